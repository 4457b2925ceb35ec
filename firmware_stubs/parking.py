"""Parking (class ``parking``): space sensors, a barrier gate with plate recognition, a lot counter.

- ``SpaceSensor``: telemetry ``occupied``, ``battery_pct``; publishes on change.
- ``BarrierGate``: events ``vehicle_entered``/``vehicle_exited`` (``plate``, ``lane``,
  ``confidence``) and ``barrier_fault`` on demand; telemetry ``barrier_open``; accepts a signed
  ``open_barrier`` (``args.lane``).
- ``LotCounter``: telemetry ``free_spaces``, ``total_spaces``; publishes on change.
- ``ParkingLot``: not a device; makes cars come and go coherently across the three (a car passes
  the barrier, parks on a sensor, leaves its space, exits through the barrier; the counter follows).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, ClassVar

from firmware_stubs import signing
from firmware_stubs.device import Scheduler, SimDevice

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on plates
PLATE_DIGITS = "0123456789"


def random_plate(rng: random.Random) -> str:
    """A plausible mainland plate: ``沪A12345``, ``京B6K9Q1``, or a new-energy ``粤AD12345``."""
    head = rng.choice(PROVINCES) + rng.choice(PLATE_LETTERS)
    if rng.random() < 0.12:
        return head + rng.choice("DF") + "".join(rng.choice(PLATE_DIGITS) for _ in range(5))
    n_letters = rng.choices((0, 1, 2), (0.6, 0.3, 0.1))[0]
    slots = set(rng.sample(range(5), n_letters))
    return head + "".join(
        rng.choice(PLATE_LETTERS) if i in slots else rng.choice(PLATE_DIGITS) for i in range(5)
    )


class SpaceSensor(SimDevice):
    device_class: ClassVar[str] = "parking"
    default_expect_every_s: ClassVar[int] = 60
    kind: ClassVar[str] = "parking space sensor"

    def __init__(self, device_id: str, *, occupied: bool = False, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.occupied = occupied
        self.plate: str | None = None

    def telemetry(self) -> dict[str, Any]:
        return {"occupied": self.occupied, "battery_pct": self.battery_pct}

    def set_occupied(self, occupied: bool, plate: str | None = None) -> None:
        with self._state_lock:
            changed = occupied != self.occupied
            self.occupied = occupied
            self.plate = plate if occupied else None
        if changed and self._running:
            self.publish_telemetry()


class LotCounter(SimDevice):
    device_class: ClassVar[str] = "parking"
    default_expect_every_s: ClassVar[int] = 60
    kind: ClassVar[str] = "parking lot counter"

    def __init__(self, device_id: str, *, total_spaces: int = 40, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.total_spaces = total_spaces
        self.free_spaces = total_spaces

    def telemetry(self) -> dict[str, Any]:
        return {"free_spaces": self.free_spaces, "total_spaces": self.total_spaces}

    def set_free(self, free_spaces: int) -> None:
        free_spaces = max(0, min(self.total_spaces, free_spaces))
        with self._state_lock:
            changed = free_spaces != self.free_spaces
            self.free_spaces = free_spaces
        if changed and self._running:
            self.publish_telemetry()


class BarrierGate(SimDevice):
    device_class: ClassVar[str] = "parking"
    default_expect_every_s: ClassVar[int] = 30
    kind: ClassVar[str] = "barrier gate with plate recognition"

    def __init__(
        self,
        device_id: str,
        *,
        lanes: tuple[str, ...] = ("in", "out"),
        arm_open_s: float = 4.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(device_id, **kwargs)
        self.lanes = lanes
        self.arm_open_s = arm_open_s
        self.open_lanes: set[str] = set()
        self._arm_generation: dict[str, int] = dict.fromkeys(lanes, 0)
        self.command_handlers = {"open_barrier": self._cmd_open_barrier}

    def telemetry(self) -> dict[str, Any]:
        return {"barrier_open": bool(self.open_lanes)}

    def _confidence(self) -> float:
        return round(self.rng.triangular(0.78, 0.995, 0.97), 3)

    def vehicle_entered(self, plate: str, lane: str | None = None) -> None:
        lane = lane or self.lanes[0]
        self.emit_event("vehicle_entered", plate=plate, lane=lane, confidence=self._confidence())
        self.raise_arm(lane, self.scaled(self.arm_open_s))

    def vehicle_exited(self, plate: str, lane: str | None = None) -> None:
        lane = lane or self.lanes[-1]
        self.emit_event("vehicle_exited", plate=plate, lane=lane, confidence=self._confidence())
        self.raise_arm(lane, self.scaled(self.arm_open_s))

    def raise_arm(self, lane: str, seconds: float) -> None:
        with self._state_lock:
            was_open = bool(self.open_lanes)
            self.open_lanes.add(lane)
            self._arm_generation[lane] = generation = self._arm_generation.get(lane, 0) + 1
        if not was_open:
            self.publish_telemetry()
        self.after(seconds, self._lower_arm, lane, generation)

    def _lower_arm(self, lane: str, generation: int) -> None:
        with self._state_lock:
            if self._arm_generation.get(lane) != generation or lane not in self.open_lanes:
                return
            self.open_lanes.discard(lane)
            now_closed = not self.open_lanes
        if now_closed:
            self.publish_telemetry()

    def fault(self, reason: str = "arm_motor_overcurrent") -> None:
        self.emit_event("barrier_fault", reason=reason)

    def _cmd_open_barrier(self, args: dict[str, Any]) -> str | Callable[[], None]:
        lane = args.get("lane", self.lanes[0])
        if lane not in self.lanes:
            return signing.BAD_ARGS
        return lambda: self.raise_arm(lane, self.arm_open_s)


class ParkingLot:
    """Cars arriving at the barrier, parking on sensors, leaving; the counter follows."""

    def __init__(
        self,
        sensors: list[SpaceSensor],
        barrier: BarrierGate | None,
        counter: LotCounter | None,
        scheduler: Scheduler,
        *,
        rate_scale: float = 1.0,
        seed: str | int = 0,
        mean_stay_s: float = 1800.0,
        initial_occupancy: float = 0.4,
    ) -> None:
        self.sensors = sensors
        self.barrier = barrier
        self.counter = counter
        self.scheduler = scheduler
        self.rate_scale = rate_scale
        self.rng = random.Random(f"{seed}:parking-lot")
        self.mean_stay_s = mean_stay_s
        # About half full in the steady state: arrivals every stay / spaces seconds on average.
        self.mean_arrival_s = mean_stay_s / max(1, len(sensors))
        self.inside = 0  # cars past the entry barrier and not yet out
        self._running = False
        for sensor in sensors:
            if self.rng.random() < initial_occupancy:
                sensor.set_occupied(True, random_plate(self.rng))
                self.inside += 1
        self._update_counter()

    def start(self) -> None:
        self._running = True
        for sensor in self.sensors:
            if sensor.occupied:
                self._later(self.rng.expovariate(1.0 / self.mean_stay_s), self._leave, sensor)
        if self.sensors:
            self._later(self.rng.expovariate(1.0 / self.mean_arrival_s), self._arrive)

    def stop(self) -> None:
        self._running = False

    def _later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> None:
        def guarded() -> None:
            if self._running:
                fn(*args)

        self.scheduler.call_later(seconds / self.rate_scale, guarded)

    def _update_counter(self) -> None:
        if self.counter is not None:
            self.counter.set_free(self.counter.total_spaces - self.inside)

    def _arrive(self) -> None:
        self._later(self.rng.expovariate(1.0 / self.mean_arrival_s), self._arrive)
        if self.inside >= len(self.sensors):
            return  # full: the car is turned away
        plate = random_plate(self.rng)
        self.inside += 1
        if self.barrier is not None:
            self.barrier.vehicle_entered(plate)
        self._update_counter()
        self._later(self.rng.uniform(20.0, 90.0), self._park, plate)

    def _park(self, plate: str) -> None:
        free = [s for s in self.sensors if not s.occupied]
        if not free:
            self._later(self.rng.uniform(10.0, 30.0), self._exit, plate)
            return
        sensor = self.rng.choice(free)
        sensor.set_occupied(True, plate)
        self._later(self.rng.expovariate(1.0 / self.mean_stay_s), self._leave, sensor)

    def _leave(self, sensor: SpaceSensor) -> None:
        plate = sensor.plate or random_plate(self.rng)
        sensor.set_occupied(False)
        self._later(self.rng.uniform(30.0, 120.0), self._exit, plate)

    def _exit(self, plate: str) -> None:
        self.inside = max(0, self.inside - 1)
        if self.barrier is not None:
            self.barrier.vehicle_exited(plate)
        self._update_counter()
