"""A door controller (class ``access``): a community gate or a building entrance.

Telemetry: ``door_open``, ``locked``, ``battery_pct`` (every ``expect_every_s`` and on change).
Events: ``access_granted``/``access_denied`` (``credential``, ``method``, ``reason``),
``door_opened`` (``method``), ``door_closed``, ``door_held_open`` (``seconds``), ``door_forced``,
``tamper``, ``intercom_call`` (``unit``).
Command: signed ``unlock`` (``args.seconds``, default 5, 1..30): acked at once, then
``door_opened`` with method ``remote`` and ``door_closed`` after the given seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from firmware_stubs.device import SimDevice

RESIDENT_METHODS = (("card", 0.45), ("face", 0.30), ("qr", 0.15), ("pin", 0.10))
DENY_REASONS = {
    "card": ("unknown_card", "card_expired", "not_permitted"),
    "face": ("face_not_matched", "not_permitted"),
    "qr": ("qr_expired", "qr_invalid"),
    "pin": ("wrong_pin", "not_permitted"),
}
UNLOCK_DEFAULT_S = 5.0
UNLOCK_MAX_S = 30.0


class DoorController(SimDevice):
    device_class: ClassVar[str] = "access"
    default_expect_every_s: ClassVar[int] = 30

    def __init__(
        self,
        device_id: str,
        *,
        units: list[str] | None = None,
        mean_access_s: float = 120.0,
        mean_exit_s: float = 240.0,
        mean_intercom_s: float = 900.0,
        held_open_after_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(device_id, **kwargs)
        self.units = units or [f"{self.building or 'b1'}-0101"]
        self.mean_access_s = mean_access_s
        self.mean_exit_s = mean_exit_s
        self.mean_intercom_s = mean_intercom_s
        self.held_open_after_s = held_open_after_s
        self.door_open = False
        self.locked = True
        self._opening = 0  # generation of the current opening; a stale close timer does nothing
        self.command_handlers = {"unlock": self._cmd_unlock}

    def describe(self) -> str:
        return "building entrance" if self.building else "community gate"

    def telemetry(self) -> dict[str, Any]:
        return {"door_open": self.door_open, "locked": self.locked, "battery_pct": self.battery_pct}

    # -- random life ------------------------------------------------------------------------

    def _start_behaviour(self) -> None:
        self.every(self.mean_access_s, self._resident_arrives)
        self.every(self.mean_exit_s, self._resident_leaves)
        self.every(self.mean_intercom_s, self._visitor_calls)

    def _credential(self, method: str) -> str:
        rng = self.rng
        if method == "card":
            return f"card:{rng.getrandbits(32):08X}"
        if method == "face":
            return f"face:r{rng.randrange(1, 5000):05d}"
        if method == "qr":
            return f"qr:{rng.getrandbits(40):010x}"
        return f"pin:{rng.choice(self.units)}"

    def _resident_arrives(self) -> None:
        methods, weights = zip(*RESIDENT_METHODS, strict=True)
        method = self.rng.choices(methods, weights)[0]
        credential = self._credential(method)
        if self.rng.random() < 0.08:
            reason = self.rng.choice(DENY_REASONS[method])
            self.emit_event("access_denied", credential=credential, method=method, reason=reason)
            return
        self.emit_event("access_granted", credential=credential, method=method)
        self.open_door(method, self._dwell_s())

    def _resident_leaves(self) -> None:
        method = "key" if self.rng.random() < 0.02 else "button"
        self.open_door(method, self._dwell_s())

    def _visitor_calls(self) -> None:
        self.intercom_call()

    def _dwell_s(self) -> float:
        if self.rng.random() < 0.03:  # someone props the door open
            return self.scaled(self.rng.uniform(40.0, 120.0))
        return self.scaled(self.rng.uniform(3.0, 8.0))

    # -- physical actions (also usable on demand) -------------------------------------------------

    def open_door(self, method: str, hold_s: float) -> None:
        """Release the lock, open the door for ``hold_s`` seconds, then close and lock it."""
        with self._state_lock:
            self._opening += 1
            opening = self._opening
            self.door_open = True
            self.locked = False
        self.emit_event("door_opened", method=method)
        self.publish_telemetry()
        held_after = self.scaled(self.held_open_after_s)
        if hold_s > held_after:
            self.after(held_after, self._held_open, opening, held_after)
        self.after(hold_s, self._close, opening)

    def _held_open(self, opening: int, seconds: float) -> None:
        if opening == self._opening and self.door_open:
            self.emit_event("door_held_open", seconds=round(seconds, 1))

    def _close(self, opening: int) -> None:
        with self._state_lock:
            if opening != self._opening or not self.door_open:
                return
            self.door_open = False
            self.locked = True
        self.emit_event("door_closed")
        self.publish_telemetry()

    def force_door(self, close_after_s: float = 5.0) -> None:
        """The door is pushed open while locked: ``door_forced``, then it closes again."""
        with self._state_lock:
            self._opening += 1
            opening = self._opening
            self.door_open = True
        self.emit_event("door_forced")
        self.publish_telemetry()
        self.after(close_after_s, self._close, opening)

    def hold_door_open(self, seconds: float = 60.0) -> None:
        """Open the door (exit button) and leave it open for ``seconds`` real seconds."""
        self.open_door("button", seconds)

    def tamper(self, reason: str = "enclosure_opened") -> None:
        self.emit_event("tamper", reason=reason)

    def intercom_call(self, unit: str | None = None) -> None:
        self.emit_event("intercom_call", unit=unit or self.rng.choice(self.units))

    # -- commands ---------------------------------------------------------------------------------

    def _cmd_unlock(self, args: dict[str, Any]) -> Callable[[], None]:
        seconds = args.get("seconds", UNLOCK_DEFAULT_S)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
            seconds = UNLOCK_DEFAULT_S
        seconds = min(max(float(seconds), 1.0), UNLOCK_MAX_S)
        return lambda: self.open_door("remote", seconds)
