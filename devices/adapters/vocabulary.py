"""The common vocabulary of CONTRACT.md section 7.3: what adapters may name their readings
and events, and in which units. The checks across every adapter read it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from devices.profile import unit_from_name
from devices.profiles import PROFILES

FIELDS: Mapping[str, str] = MappingProxyType(
    {
        # access
        "door_open": "",
        "locked": "",
        # parking
        "occupied": "",
        "free_spaces": "",
        "total_spaces": "",
        # meter
        "energy_kwh": "kWh",
        "energy_export_kwh": "kWh",
        "energy_today_kwh": "kWh",
        "energy_yesterday_kwh": "kWh",
        "power_w": "W",
        "power_l1_w": "W",
        "power_l2_w": "W",
        "power_l3_w": "W",
        "apparent_power_va": "VA",
        "reactive_power_var": "var",
        "power_factor": "",
        "voltage_v": "V",
        "voltage_l2_v": "V",
        "voltage_l3_v": "V",
        "current_a": "A",
        "current_l2_a": "A",
        "current_l3_a": "A",
        "frequency_hz": "Hz",
        "volume_m3": "m3",
        "flow_m3h": "m3/h",
        "relay_on": "",
        "leak": "",
        # locker
        "free_compartments": "",
        "total_compartments": "",
        # any
        "battery_pct": "%",
        "battery_v": "V",
        "temperature_c": "°C",
        "rssi_dbm": "dBm",
        "snr_db": "dB",
        "linkquality": "",
        "uptime_s": "s",
    }
)
"""Section 7.3's reading names and their units."""

UNITLESS: frozenset[str] = frozenset(("battery_low", "spreading_factor"))
"""Vendor readings with no unit that adapters keep beside the vocabulary's own unitless
names (flags and indices that have no suffix to carry)."""

_CHANNEL = re.compile(r"_l\d+(?=_[a-z0-9]+$|$)")
"""The phase or channel part of a name (``power_l2_w``, ``relay_l2_on``, ``power_factor_l3``)."""

EVENTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        cls: frozenset(profile.events)
        | {"access": frozenset(("door_unlocked", "door_locked", "duress"))}.get(cls, frozenset())
        for cls, profile in PROFILES.items()
    }
)
"""Events by class: each profile's, plus section 7.3's additions."""


def unit(name: str) -> str | None:
    """The unit of a reading name an adapter may use, ``""`` for a known unitless one, and
    ``None`` for a name outside the vocabulary and the suffix-unit rule."""
    base = _CHANNEL.sub("", name)
    for candidate in (name, base):
        if candidate in FIELDS:
            return FIELDS[candidate]
        if candidate in UNITLESS:
            return ""
    found = unit_from_name(name)
    return found or None


def known_event(device_class: str, event: str) -> bool:
    """Whether ``event`` belongs to ``device_class`` (its profile or section 7.3)."""
    return event in EVENTS.get(device_class, frozenset())
