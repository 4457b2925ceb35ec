"""The pure device layer: profiles per device class and the payload decoder."""

from __future__ import annotations

from devices.decode import REASONS, decode, readings
from devices.model import Decoded, Reading, Rejected
from devices.profile import Profile
from devices.profiles import PROFILES

__all__ = ["PROFILES", "REASONS", "Decoded", "Profile", "Reading", "Rejected", "decode", "readings"]
