"""Every adapter the gateway can listen to, by name: the MQTT ecosystems and the HTTP-push
devices. Serial-frame adapters are for ``courtyard decode`` only: nothing binds to them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devices.adapters import ADAPTERS as ALL_ADAPTERS
from devices.adapters.base import Adapter

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {name: a for name, a in ALL_ADAPTERS.items() if a.transport in ("mqtt", "http")}
)
"""Adapters a device may be bound to and an ``[[adapters]]`` entry may name."""

COMMAND_NEEDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"hikvision": ("isapi_url", "username", "password", "door")}
)
"""What a device binding needs besides ``commands = true`` to be commanded through its
adapter (CONTRACT.md 7.4): ISAPI's remote open is an HTTP request to the controller with
digest auth; MQTT ecosystems need nothing more than the source."""
