"""What a rule handler may use of the engine: the one interface between the built-in rules
(:mod:`gateway.rules.handlers`) and the engine that runs them, which satisfies it.

Handlers are pure decisions over this context; a test can drive them with a small fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.alerts import AlertBook
from gateway.rules.builtin import Rule
from gateway.tickets import TicketBook


class DeviceInfo(Protocol):
    """A registered device as the rules see it."""

    @property
    def community(self) -> str: ...

    @property
    def bridged(self) -> bool:
        """The gateway's own field bus or a device on it."""
        ...


class RuleContext(Protocol):
    rules: Mapping[str, Rule]
    alerts: AlertBook
    tickets: TicketBook
    grace_from: dict[str, int]
    """Per device, the start of a fresh grace period (its parent came back)."""
    memory: dict[tuple[str, str], Any]
    """Per-device rule state: windows, previous values."""
    doubt_until_ms: int
    """Offline statuses received before this may be the gateway's own doing (a restart)."""
    awaiting_reconnect: set[str]
    """Devices whose doubted offline status waits for them to come back."""

    @property
    def info(self) -> Mapping[str, DeviceInfo]: ...

    @property
    def children(self) -> Mapping[str, list[str]]:
        """Devices behind each parent (a serial bus, a bridge)."""
        ...

    # alerts
    def fault(self, device: str, rule_name: str, details: dict[str, Any], at_ms: int) -> bool: ...
    def ok(self, device: str, rule_name: str, at_ms: int, reason: str = ...) -> None: ...
    def clear_now(self, device: str, rule_name: str, at_ms: int, reason: str) -> None: ...
    def trigger(self, type_: str, device: str, data: dict[str, Any], at_ms: int) -> None: ...

    # timers
    def set_timer(
        self, device: str, key: str, deadline_ms: int, data: dict[str, Any] | None = None
    ) -> None: ...
    def has_timer(self, device: str, key: str) -> bool: ...
    def cancel(self, device: str, key: str) -> None: ...

    # liveness
    def arm_silence(self, device: str) -> None: ...
    def silent(self, device: str, now_ms: int) -> bool: ...
    def parent_verdict_due(self, device: str, now_ms: int) -> int | None: ...
    def parent_down(self, device: str, now_ms: int) -> bool: ...
    def mark_offline(self, device: str, at_ms: int) -> None: ...
