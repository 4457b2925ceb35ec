"""Device profiles: what a device class reports and accepts, as frozen data.

A :class:`Profile` is assembled from small reusable bundles (tuples of specs) by
:func:`make_profile`. Nothing here performs I/O or holds mutable state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from devices.model import Rejected

FieldType = Literal["bool", "number"]
FieldKind = Literal["gauge", "counter"]
AttrType = Literal["string", "number", "integer", "bool", "id"]
"""``id``: a name or a number, e.g. a compartment ``"A3"`` or ``12`` (a string or an integer)."""

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""Telemetry field, event, attribute and action names."""

SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_kwh", "kWh"),
    ("_wh", "Wh"),
    ("_kw", "kW"),
    ("_w", "W"),
    ("_v", "V"),
    ("_a", "A"),
    ("_m3h", "m3/h"),
    ("_m3", "m3"),
    ("_pct", "%"),
    ("_ms", "ms"),
    ("_s", "s"),
    ("_c", "°C"),
    ("_hz", "Hz"),
)
"""Unit of a field that no profile declares, from the end of its name."""


def unit_from_name(name: str) -> str:
    """The unit implied by a field name's suffix (``tank_m3`` -> ``m3``), else ``""``."""
    for suffix, unit in SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A telemetry field: its unit, JSON type, and whether it is a gauge or a counter."""

    name: str
    unit: str
    type: FieldType = "number"
    kind: FieldKind = "gauge"


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """An event attribute or a command argument: type, optional bounds or choices."""

    name: str
    type: AttrType
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False  # null is a value (e.g. a plate camera that read no plate)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this spec's type and lies within its bounds or choices."""
        if value is None:
            return self.nullable
        kind = type(value)
        if self.type == "string":
            return kind is str and (not self.choices or value in self.choices)
        if self.type == "bool":
            return kind is bool
        if self.type == "id":
            return (kind is str and value != "") or kind is int
        if kind is not int and (self.type == "integer" or kind is not float):
            return False
        if kind is float and not math.isfinite(value):
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        return self.maximum is None or value <= self.maximum


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event a device may publish, with its known attributes."""

    name: str
    attrs: tuple[AttrSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command action a device accepts, with its arguments."""

    action: str
    args: tuple[AttrSpec, ...] = ()


def check_attrs(specs: Iterable[AttrSpec], values: Mapping[str, Any], reason: str) -> None:
    """Raise ``Rejected(reason)`` when a known attribute is missing or has a bad value."""
    for spec in specs:
        if spec.name not in values:
            if spec.required:
                raise Rejected(reason, f"{spec.name}: required")
        elif not spec.accepts(values[spec.name]):
            raise Rejected(reason, f"{spec.name}: expected {spec.type}")


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything Courtyard knows about one device class."""

    device_class: str
    fields: Mapping[str, FieldSpec]
    events: Mapping[str, EventSpec]
    commands: Mapping[str, CommandSpec]
    # derived from ``fields``: the declared fields that are not bool (the decoder's fast path)
    numbers: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = frozenset(n for n, spec in self.fields.items() if spec.type != "bool")
        object.__setattr__(self, "numbers", numbers)

    def unit(self, field: str) -> str:
        """The unit of ``field``: declared, else implied by its name."""
        spec = self.fields.get(field)
        return spec.unit if spec is not None else unit_from_name(field)

    def kind(self, field: str) -> FieldKind:
        """``"counter"`` for declared cumulative fields, else ``"gauge"``."""
        spec = self.fields.get(field)
        return spec.kind if spec is not None else "gauge"

    def command_args(self, action: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a command's arguments; unknown arguments are refused.

        Raises ``Rejected("unknown_action")`` or ``Rejected("bad_args")``.
        """
        spec = self.commands.get(action)
        if spec is None:
            raise Rejected("unknown_action", f"{self.device_class} has no action {action!r}")
        known = {arg.name for arg in spec.args}
        extra = sorted(str(name) for name in args if name not in known)
        if extra:
            raise Rejected("bad_args", f"unknown argument {extra[0]!r}")
        check_attrs(spec.args, args, "bad_args")
        return dict(args)


def _index(items: Iterable[Any], key: str, what: str) -> Mapping[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name = getattr(item, key)
        if name in out and out[name] != item:
            raise ValueError(f"conflicting {what} {name!r}")
        out[name] = item
    return MappingProxyType(out)


def make_profile(
    device_class: str,
    *,
    fields: Iterable[Iterable[FieldSpec]] = (),
    events: Iterable[Iterable[EventSpec]] = (),
    commands: Iterable[Iterable[CommandSpec]] = (),
) -> Profile:
    """Compose a profile from bundles; identical duplicates merge, conflicting ones fail."""
    return Profile(
        device_class=device_class,
        fields=_index((f for bundle in fields for f in bundle), "name", "field"),
        events=_index((e for bundle in events for e in bundle), "name", "event"),
        commands=_index((c for bundle in commands for c in bundle), "action", "command"),
    )


# Bundles shared by several classes.


def battery() -> tuple[FieldSpec, ...]:
    """Battery level in percent."""
    return (FieldSpec("battery_pct", "%"),)


def common() -> tuple[FieldSpec, ...]:
    """Readings any device may report (CONTRACT.md 7.3): battery, temperature, radio, uptime."""
    return (
        FieldSpec("battery_pct", "%"),
        FieldSpec("battery_v", "V"),
        FieldSpec("temperature_c", "°C"),
        FieldSpec("rssi_dbm", "dBm"),
        FieldSpec("snr_db", "dB"),
        FieldSpec("linkquality", ""),
        FieldSpec("uptime_s", "s"),
    )


def tamper() -> tuple[EventSpec, ...]:
    """Physical tampering, or a refused command (``reason``: bad_signature, replayed)."""
    return (
        EventSpec(
            "tamper",
            (AttrSpec("reason", "string"), AttrSpec("command_id", "string")),
        ),
    )
