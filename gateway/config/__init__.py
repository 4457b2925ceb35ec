"""One typed settings object, read from a TOML file and ``COURTYARD_<SECTION>_<KEY>`` variables.

Everything is validated at start-up; an invalid value stops the gateway with the key, the value
and what was expected (:class:`ConfigError`). Relative paths in a file resolve against the
file's own folder. The community file (the registry) is read here too.
"""

from __future__ import annotations

from gateway.config.base import ConfigError
from gateway.config.registry import Building, Community, Registry, RegistryDevice, load_registry
from gateway.config.settings import (
    ApiSettings,
    AuthSettings,
    CommandSettings,
    CommunitySection,
    ConsoleOperator,
    ConsoleSettings,
    InfluxSettings,
    MqttSettings,
    PlatformKey,
    Settings,
    StoreSettings,
    WebhookSettings,
    load_settings,
)

__all__ = [
    "ApiSettings",
    "AuthSettings",
    "Building",
    "CommandSettings",
    "Community",
    "CommunitySection",
    "ConfigError",
    "ConsoleOperator",
    "ConsoleSettings",
    "InfluxSettings",
    "MqttSettings",
    "PlatformKey",
    "Registry",
    "RegistryDevice",
    "Settings",
    "StoreSettings",
    "WebhookSettings",
    "load_registry",
    "load_settings",
]
