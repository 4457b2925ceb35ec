"""The built-in rules as data: which classes they watch, severity, tickets, thresholds.

Every value may be overridden in the configuration (``[rules.<name>]``); an unknown rule or
key, or a bad value, stops start-up with the key (:func:`validate_overrides`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SEVERITIES = ("critical", "major", "minor", "warning", "info")
ALL = ("access", "parking", "meter", "locker")
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule. ``clear_after_s``: the condition must stay gone this long before the alert
    clears (hysteresis: a flapping sensor keeps one alert). ``auto_clear_s``: a one-shot fault
    (an event with no "it ended" message) clears after this long without a repeat (0: never).
    ``ticket``: a repair ticket is opened. ``resolve_after_s``: an open ticket is resolved after
    the device has been healthy this long (negative: only by the platform)."""

    name: str
    title: str
    classes: tuple[str, ...]
    severity: str
    ticket: bool = False
    enabled: bool = True
    clear_after_s: float = 0.0
    auto_clear_s: float = 0.0
    resolve_after_s: float = -1.0
    params: Mapping[str, float] = field(default_factory=dict)

    def p(self, key: str) -> float:
        return self.params[key]


def _r(name: str, title: str, classes: tuple[str, ...], severity: str, **kw: Any) -> Rule:
    return Rule(name, title, classes, severity, **kw)


DEFAULTS: tuple[Rule, ...] = (
    # security
    _r("door_forced", "Door forced open", ("access",), "critical", auto_clear_s=HOUR),
    _r(
        "door_held_open",
        "Door held open",
        ("access",),
        "major",
        auto_clear_s=HOUR,
        params={"open_s": 60.0},
    ),
    _r("tamper", "Device tampered with", ALL, "major", ticket=True, auto_clear_s=HOUR),
    _r(
        "access_brute_force",
        "Repeated denied access at one door",
        ("access",),
        "critical",
        auto_clear_s=600.0,
        params={"count": 5.0, "window_s": 60.0},
    ),
    _r(
        "command_rejected",
        "Door refused a forged or replayed command",
        ("access",),
        "critical",
        auto_clear_s=HOUR,
    ),
    _r(
        "command_late_ok",
        "Device executed a command after the gateway answered it had not",
        ("access", "parking", "locker"),
        "critical",
        auto_clear_s=HOUR,
    ),
    _r(
        "door_attempts_flood",
        "More unlock attempts on a door than its alert rate ([commands] alert_per_minute_door)",
        ("access", "parking", "locker"),
        "major",
        auto_clear_s=600,
    ),
    # liveness
    _r(
        "device_offline",
        "Device offline",
        ALL,
        "major",
        ticket=True,
        clear_after_s=10.0,
        resolve_after_s=24 * HOUR,
        # reconnect_wait_s: after a clean restart with the embedded broker, whose own stop fired
        # the devices' last wills, how long such a device may take to come back unalerted
        params={"silent_periods": 3.0, "reconnect_wait_s": 120.0},
    ),
    # meters
    _r(
        "continuous_flow",
        "Water flowing without a break (leak)",
        ("meter",),
        "major",
        ticket=True,
        clear_after_s=60.0,
        resolve_after_s=0.0,
        params={"flow_s": 2 * HOUR},
    ),
    _r(
        "counter_backwards",
        "Meter counter went backwards",
        ("meter",),
        "major",
        ticket=True,
        auto_clear_s=24 * HOUR,
    ),
    _r(
        "power_over_limit",
        "Power over the limit",
        ("meter",),
        "warning",
        clear_after_s=60.0,
        params={"limit_w": 20000.0, "clear_ratio": 0.9},
    ),
    _r("leak_detected", "Leak detected", ("meter",), "critical", ticket=True, auto_clear_s=HOUR),
    _r("reverse_flow", "Reverse flow", ("meter",), "minor", ticket=True, auto_clear_s=HOUR),
    # parking
    _r(
        "parking_overstay",
        "Parking space occupied too long",
        ("parking",),
        "warning",
        params={"limit_s": 24 * HOUR},
    ),
    _r(
        "lot_nearly_full",
        "Parking lot nearly full",
        ("parking",),
        "info",
        clear_after_s=60.0,
        params={"full_pct": 95.0, "clear_pct": 90.0},
    ),
    _r("barrier_fault", "Barrier fault", ("parking",), "major", ticket=True, auto_clear_s=HOUR),
    # lockers
    _r(
        "parcel_reminder",
        "Parcel not picked up",
        ("locker",),
        "info",
        params={"after_s": 48 * HOUR, "repeat_s": 24 * HOUR},
    ),
    _r(
        "compartment_jammed",
        "Locker compartment jammed",
        ("locker",),
        "major",
        ticket=True,
        auto_clear_s=HOUR,
    ),
    _r(
        "compartment_left_open",
        "Locker compartment left open",
        ("locker",),
        "minor",
        auto_clear_s=HOUR,
    ),
    # batteries
    _r(
        "battery_low",
        "Battery low",
        ALL,
        "minor",
        ticket=True,
        clear_after_s=60.0,
        resolve_after_s=0.0,
        params={"below_pct": 15.0, "clear_pct": 20.0},
    ),
    # the gateway itself
    _r("webhook_failing", "Webhook endpoint failing", (), "major"),
    _r(
        "store_degraded",
        "Store degraded: shedding readings, holding acknowledgements or failing to write",
        (),
        "critical",
        clear_after_s=60.0,
    ),
    _r(
        "store_replaced",
        "Store failed its integrity check at start-up: moved aside, a fresh one started",
        (),
        "critical",
        auto_clear_s=24 * HOUR,
    ),
)

_COMMON = {"enabled", "severity", "ticket", "clear_after_s", "auto_clear_s", "resolve_after_s"}


def validate_overrides(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check ``[rules.<name>]`` tables; raise ``ValueError`` naming the bad key."""
    known = {r.name: r for r in DEFAULTS}
    out: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        if name not in known:
            raise ValueError(f"rules.{name}: unknown rule (known: {', '.join(sorted(known))})")
        if not isinstance(table, Mapping):
            raise ValueError(f"rules.{name}: expected a table")
        rule = known[name]
        for key, value in table.items():
            where = f"rules.{name}.{key} = {value!r}"
            if key in ("enabled", "ticket"):
                if not isinstance(value, bool):
                    raise ValueError(f"{where}: expected true or false")
            elif key == "severity":
                if value not in SEVERITIES:
                    raise ValueError(f"{where}: expected one of {', '.join(SEVERITIES)}")
            elif key in _COMMON or key in rule.params:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                if not ok or value != value or (value < 0 and key != "resolve_after_s"):
                    raise ValueError(f"{where}: expected a number >= 0")
            else:
                allowed = sorted(_COMMON | set(rule.params))
                raise ValueError(f"rules.{name}.{key}: unknown key (allowed: {', '.join(allowed)})")
        out[name] = dict(table)
    return out


def build_rules(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Rule]:
    """The effective rules: the defaults with the configured overrides applied."""
    rules: dict[str, Rule] = {}
    for rule in DEFAULTS:
        o = dict((overrides or {}).get(rule.name, {}))
        params = {k: float(o.pop(k)) for k in list(o) if k in rule.params}
        rules[rule.name] = replace(rule, params={**rule.params, **params}, **o)
    return rules
