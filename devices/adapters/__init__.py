"""Adapters: vendor formats (Zigbee2MQTT, Tasmota, Shelly, LoRaWAN network servers,
Hikvision, plate cameras) converted into the contract's classes, fields and events.

Pure like the profiles; see :mod:`devices.adapters.base` for what an adapter is.
"""

from __future__ import annotations

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options, Picture

__all__ = ["Adapted", "AdaptedMessage", "Adapter", "Options", "Picture"]
