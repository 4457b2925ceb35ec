"""The community file: communities, buildings and the device registry (with per-device
secrets), validated as a whole."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from gateway.adapters.table import ADAPTERS, COMMAND_NEEDS
from gateway.config.base import ConfigError, DeviceClass, Ident, Section, format_error


class Community(Section):
    id: Ident
    name: str = ""


class Building(Section):
    id: Ident
    community: Ident
    name: str = ""


@pydantic_dataclass(
    frozen=True, slots=True, config=ConfigDict(extra="forbid", populate_by_name=True)
)
class RegistryDevice:
    """One registered device. A slots dataclass, not a model: a community file may list
    100,000 devices, and a model instance costs about a kilobyte more than this."""

    id: Ident
    community: Ident
    device_class: DeviceClass = Field(alias="class")
    building: str = ""
    secret: str = Field(default="", repr=False)
    expect_every_s: float | None = Field(default=None, gt=0)
    parent: str = ""
    name: str = ""
    # the command rule (CONTRACT.md section 3) the device's firmware implements: 2 never
    # executes past expires_at; it only changes what a timed-out answer says may still happen
    command_rule: int = Field(default=1, ge=1, le=2)
    # a device that speaks its vendor's format (CONTRACT.md 7.1): the adapter, the
    # ecosystem's own identity of the device, and for HTTP push the token it authenticates with
    adapter: str = ""
    source: str = ""
    ingest_token: str = Field(default="", repr=False)
    # commandable through its adapter (7.4), and what that path needs
    commands: bool = False
    isapi_url: str = ""
    username: str = ""
    password: str = Field(default="", repr=False)
    door: int | None = Field(default=None, ge=1, le=256)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        if v and (not re.fullmatch(r"[0-9a-fA-F]{32,}", v) or len(v) % 2):
            raise ValueError("expected a hex string of 32 or more digits (even length)")
        return v

    @field_validator("ingest_token")
    @classmethod
    def _token(cls, v: str) -> str:
        if v and not re.fullmatch(r"[0-9a-fA-F]{32,256}", v):
            raise ValueError("expected a hex string of 32 or more digits")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if len(v) > 256 or any(ord(c) < 32 for c in v):
            raise ValueError("expected at most 256 printable characters")
        return v

    @field_validator("isapi_url")
    @classmethod
    def _isapi_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if v and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("expected http(s)://HOST[:PORT]")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _binding(self) -> RegistryDevice:
        if not self.adapter:
            if self.source or self.ingest_token or self.commands:
                raise ValueError("source, ingest_token and commands need an adapter")
            return self
        adapter = ADAPTERS.get(self.adapter)
        if adapter is None:
            raise ValueError(
                f"adapter {self.adapter!r} is unknown (known: {', '.join(sorted(ADAPTERS))})"
            )
        if adapter.transport == "http" and not self.ingest_token:
            raise ValueError(f"adapter {self.adapter!r} pushes over HTTP: it needs ingest_token")
        if adapter.transport == "mqtt" and not self.source:
            raise ValueError(f"adapter {self.adapter!r} needs source (the device's identity)")
        if self.commands:
            missing = [k for k in COMMAND_NEEDS.get(self.adapter, ()) if not getattr(self, k)]
            if missing:
                raise ValueError(f"commands through {self.adapter!r} need {', '.join(missing)}")
        return self

    @field_validator("community", "device_class", "building", "parent")
    @classmethod
    def _shared(cls, v: str) -> str:
        return sys.intern(v)  # thousands of devices share a few of these

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> RegistryDevice:
        return _REGISTRY_DEVICE.validate_python(data)


_REGISTRY_DEVICE: TypeAdapter[RegistryDevice] = TypeAdapter(RegistryDevice)


class Registry(Section):
    communities: list[Community] = []
    buildings: list[Building] = []
    devices: list[RegistryDevice] = []
    _by_id: dict[str, RegistryDevice] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        communities = {c.id for c in self.communities}
        buildings = {b.id for b in self.buildings}
        seen: set[str] = set()
        sources: dict[tuple[str, str], str] = {}
        tokens: dict[str, str] = {}
        for i, d in enumerate(self.devices):
            where = f"devices[{i}] ({d.id})"
            if d.id in seen:
                raise ValueError(f"{where}: duplicate device id")
            seen.add(d.id)
            if d.source:
                key = (d.adapter, d.source.casefold())
                if key in sources:
                    raise ValueError(
                        f"{where}: source {d.source!r} of adapter {d.adapter!r} is already"
                        f" bound to {sources[key]}"
                    )
                sources[key] = d.id
            if d.ingest_token:  # the token picks the device: one device per token
                token = d.ingest_token.lower()
                if token in tokens:
                    raise ValueError(f"{where}: ingest_token is already {tokens[token]}'s")
                tokens[token] = d.id
            if communities and d.community not in communities:
                raise ValueError(f"{where}: community {d.community!r} is not in [[communities]]")
            if d.building and d.building not in buildings:
                raise ValueError(f"{where}: building {d.building!r} is not in [[buildings]]")
        for b in self.buildings:
            if communities and b.community not in communities:
                raise ValueError(f"buildings ({b.id}): community {b.community!r} is unknown")
        return self

    def by_id(self) -> dict[str, RegistryDevice]:
        """Devices by id (built once: the registry is immutable)."""
        cached = self._by_id
        if cached is None:
            cached = self._by_id = {d.id: d for d in self.devices}
        return cached


def load_registry(path: str | os.PathLike[str] | None) -> Registry:
    """Read the community file; an absent path means an empty registry."""
    if not path:
        return Registry()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"community file {file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"community file {file} is not valid TOML: {exc}") from exc
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_error(exc, str(file), data)) from None
