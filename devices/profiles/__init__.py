"""The built-in device profiles, by class name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devices.profile import Profile
from devices.profiles import access, locker, meter, parking

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {p.device_class: p for p in (access.PROFILE, parking.PROFILE, meter.PROFILE, locker.PROFILE)}
)
"""Every known device class and its profile (read-only)."""

__all__ = ["PROFILES", "Profile"]
