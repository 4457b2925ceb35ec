"""A parcel locker bank (class ``locker``).

Telemetry: ``free_compartments``, ``total_compartments`` (every ``expect_every_s`` and on change).
Events: ``parcel_deposited`` (``compartment``, ``parcel_id``, ``unit``), ``parcel_picked_up``
(``compartment``, ``parcel_id``); on demand ``compartment_jammed`` and ``compartment_left_open``
(``compartment``).
Command: signed ``open_compartment`` (``args.compartment``, 1..total): the compartment opens and
a parcel inside counts as picked up. Refused with ``bad_args`` for a compartment that does not
exist and ``compartment_jammed`` for a jammed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from firmware_stubs import signing
from firmware_stubs.device import SimDevice

JAMMED = "compartment_jammed"


@dataclass(frozen=True)
class Parcel:
    parcel_id: str
    unit: str


class LockerBank(SimDevice):
    device_class: ClassVar[str] = "locker"
    default_expect_every_s: ClassVar[int] = 60
    kind: ClassVar[str] = "parcel locker bank"

    def __init__(
        self,
        device_id: str,
        *,
        compartments: int = 24,
        units: list[str] | None = None,
        mean_deposit_s: float = 600.0,
        mean_pickup_s: float = 7200.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(device_id, **kwargs)
        self.total_compartments = compartments
        self.units = units or ["b1-0101"]
        self.mean_deposit_s = mean_deposit_s
        self.mean_pickup_s = mean_pickup_s
        self.parcels: dict[int, Parcel] = {}
        self.jammed: set[int] = set()
        self.command_handlers = {"open_compartment": self._cmd_open_compartment}

    def describe(self) -> str:
        return f"{self.kind}, {self.total_compartments} compartments"

    @property
    def free_compartments(self) -> int:
        return self.total_compartments - len(self.parcels) - len(self.jammed - set(self.parcels))

    def telemetry(self) -> dict[str, Any]:
        return {
            "free_compartments": self.free_compartments,
            "total_compartments": self.total_compartments,
        }

    # -- random life ------------------------------------------------------------------------

    def _start_behaviour(self) -> None:
        self.every(self.mean_deposit_s, self._courier_comes)

    def _courier_comes(self) -> None:
        self.deposit()  # the resident collects it later (scheduled by deposit)

    # -- actions (also usable on demand) ----------------------------------------------------------

    def deposit(self, unit: str | None = None, parcel_id: str | None = None) -> int | None:
        """A courier puts a parcel in a free compartment; returns it (``None`` when full)."""
        with self._state_lock:
            free = [
                c
                for c in range(1, self.total_compartments + 1)
                if c not in self.parcels and c not in self.jammed
            ]
            if not free:
                return None
            compartment = self.rng.choice(free)
            parcel = Parcel(
                parcel_id or f"P{self.rng.randrange(10**11, 10**12)}",
                unit or self.rng.choice(self.units),
            )
            self.parcels[compartment] = parcel
        self.emit_event(
            "parcel_deposited",
            compartment=compartment,
            parcel_id=parcel.parcel_id,
            unit=parcel.unit,
        )
        self.publish_telemetry()
        self.after(self.next_delay(self.mean_pickup_s), self._resident_comes, compartment, parcel)
        return compartment

    def _resident_comes(self, compartment: int, parcel: Parcel) -> None:
        if self.parcels.get(compartment) == parcel and compartment not in self.jammed:
            self.pick_up(compartment)

    def pick_up(self, compartment: int) -> Parcel | None:
        """The parcel in ``compartment`` is taken out (pickup code or remote open)."""
        with self._state_lock:
            parcel = self.parcels.pop(compartment, None)
        if parcel is None:
            return None
        self.emit_event("parcel_picked_up", compartment=compartment, parcel_id=parcel.parcel_id)
        self.publish_telemetry()
        return parcel

    def jam(self, compartment: int) -> None:
        with self._state_lock:
            self.jammed.add(compartment)
        self.emit_event("compartment_jammed", compartment=compartment)
        self.publish_telemetry()

    def unjam(self, compartment: int) -> None:
        with self._state_lock:
            self.jammed.discard(compartment)
        self.publish_telemetry()

    def leave_open(self, compartment: int) -> None:
        self.emit_event("compartment_left_open", compartment=compartment)

    # -- commands ---------------------------------------------------------------------------------

    def _cmd_open_compartment(self, args: dict[str, Any]) -> str | Callable[[], None]:
        compartment = args.get("compartment")
        if (
            isinstance(compartment, bool)
            or not isinstance(compartment, int)
            or not 1 <= compartment <= self.total_compartments
        ):
            return signing.BAD_ARGS
        if compartment in self.jammed:
            return JAMMED
        return lambda: self.pick_up(compartment)
