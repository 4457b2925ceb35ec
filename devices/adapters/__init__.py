"""Adapters: vendor formats (Zigbee2MQTT, Tasmota, Shelly, LoRaWAN network servers,
Hikvision, plate cameras) converted into the contract's classes, fields and events.

Pure like the profiles; see :mod:`devices.adapters.base` for what an adapter is.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options, Picture
from devices.adapters.dahua_vto import ADAPTER as DAHUA_VTO
from devices.adapters.http import HTTP_ADAPTERS
from devices.adapters.lorawan import CHIRPSTACK_ADAPTER as CHIRPSTACK
from devices.adapters.lorawan import TTS_ADAPTER as TTS
from devices.adapters.serial import CJT188, DLT645, LOCKBOARD, MODBUS
from devices.adapters.shelly import ADAPTER as SHELLY
from devices.adapters.tasmota import ADAPTER as TASMOTA
from devices.adapters.zigbee2mqtt import ADAPTER as ZIGBEE2MQTT

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {
        "chirpstack": CHIRPSTACK,
        "cjt188": CJT188,
        "dahua-vto": DAHUA_VTO,
        "dlt645": DLT645,
        "lockboard": LOCKBOARD,
        "modbus": MODBUS,
        "shelly": SHELLY,
        "tasmota": TASMOTA,
        "tts": TTS,
        "zigbee2mqtt": ZIGBEE2MQTT,
        **HTTP_ADAPTERS,  # hikvision, hikvision-anpr, vzenith, 2n-lpr
    }
)
"""Every adapter by its name (CONTRACT.md section 7): MQTT and serial ones one import and one
line each, sorted, so that adding an ecosystem touches two lines; the HTTP-push ones from
:mod:`devices.adapters.http`."""

__all__ = ["ADAPTERS", "Adapted", "AdaptedMessage", "Adapter", "Options", "Picture"]
