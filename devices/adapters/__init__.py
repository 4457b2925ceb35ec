"""Adapters: vendor formats (Zigbee2MQTT, Tasmota, Shelly, LoRaWAN network servers,
Hikvision, plate cameras) converted into the contract's classes, fields and events.

Pure like the profiles; see :mod:`devices.adapters.base` for what an adapter is.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devices.adapters import dahua_vto, lorawan, serial, shelly, tasmota, zigbee2mqtt
from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options, Picture

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {
        a.name: a
        for a in (
            lorawan.CHIRPSTACK_ADAPTER,
            serial.CJT188,
            dahua_vto.ADAPTER,
            serial.DLT645,
            serial.LOCKBOARD,
            serial.MODBUS,
            shelly.ADAPTER,
            tasmota.ADAPTER,
            lorawan.TTS_ADAPTER,
            zigbee2mqtt.ADAPTER,
        )
    }
)
"""Every adapter by its name (CONTRACT.md section 7), one line each, sorted by name."""

__all__ = ["ADAPTERS", "Adapted", "AdaptedMessage", "Adapter", "Options", "Picture"]
