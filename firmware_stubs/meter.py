"""Utility meters (class ``meter``): electricity, water, gas.

- ``ElectricityMeter``: ``energy_kwh`` (cumulative, integrates ``power_w``), ``power_w``,
  ``voltage_v`` (about 230 V), ``current_a``.
- ``WaterMeter``: ``volume_m3`` (cumulative), ``flow_m3h`` (mostly 0, bursts of use),
  ``battery_pct``.
- ``GasMeter``: ``volume_m3`` (cumulative), ``battery_pct``.

Events on demand: ``tamper()``, ``reverse_flow()``, ``leak_detected()`` (water),
``close_valve()`` (water, gas: ``valve_closed``; the flow stops until ``open_valve()``).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from firmware_stubs.device import SimDevice


class Meter(SimDevice):
    device_class: ClassVar[str] = "meter"
    default_expect_every_s: ClassVar[int] = 60

    def __init__(self, device_id: str, *, unit: str = "", **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.unit = unit
        self._last_advance = time.monotonic()

    def describe(self) -> str:
        return f"{self.kind}, unit {self.unit}" if self.unit else self.kind

    def _elapsed_h(self, now_s: float) -> float:
        """Simulated hours since the last reading (real time times ``rate_scale``)."""
        dt = max(0.0, now_s - self._last_advance)
        self._last_advance = now_s
        return dt * self.rate_scale / 3600.0

    def tamper(self, reason: str = "cover_opened") -> None:
        self.emit_event("tamper", reason=reason)

    def reverse_flow(self) -> None:
        self.emit_event("reverse_flow")


class ElectricityMeter(Meter):
    kind: ClassVar[str] = "electricity meter"

    def __init__(self, device_id: str, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.energy_kwh = round(self.rng.uniform(300.0, 20000.0), 3)
        self.base_w = self.rng.uniform(60.0, 250.0)
        self.power_w = self.base_w
        self.voltage_v = 230.0
        self.current_a = 0.0
        self._appliance_w = 0.0

    def _advance(self, now_s: float) -> None:
        hours = self._elapsed_h(now_s)
        # Energy over the last interval at the power that was drawn, then a new reading.
        self.energy_kwh += self.power_w * hours / 1000.0
        rng = self.rng
        if rng.random() < 0.15:  # an appliance switches on or off
            self._appliance_w = (
                0.0
                if self._appliance_w
                else rng.choice((800.0, 1200.0, 1500.0, 2000.0, 2200.0, 3000.0))
            )
        self.power_w = max(0.0, self.base_w * rng.uniform(0.85, 1.15) + self._appliance_w)
        self.voltage_v = rng.gauss(230.0, 1.8)
        self.current_a = self.power_w / (self.voltage_v * 0.95)

    def telemetry(self) -> dict[str, Any]:
        return {
            "energy_kwh": round(self.energy_kwh, 3),
            "power_w": round(self.power_w, 1),
            "voltage_v": round(self.voltage_v, 1),
            "current_a": round(self.current_a, 2),
        }


class WaterMeter(Meter):
    kind: ClassVar[str] = "water meter"

    def __init__(self, device_id: str, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.volume_m3 = round(self.rng.uniform(10.0, 900.0), 3)
        self.flow_m3h = 0.0
        self.valve_open = True

    def _advance(self, now_s: float) -> None:
        self.volume_m3 += self.flow_m3h * self._elapsed_h(now_s)
        if not self.valve_open:
            self.flow_m3h = 0.0
        elif self.rng.random() < 0.25:
            self.flow_m3h = self.rng.uniform(0.15, 1.4)  # a tap, a shower, the washing machine
        else:
            self.flow_m3h = 0.0

    def telemetry(self) -> dict[str, Any]:
        return {
            "volume_m3": round(self.volume_m3, 4),
            "flow_m3h": round(self.flow_m3h, 3),
            "battery_pct": self.battery_pct,
        }

    def leak_detected(self) -> None:
        self.emit_event("leak_detected")

    def close_valve(self) -> None:
        with self._state_lock:
            self.valve_open = False
            self.flow_m3h = 0.0
        self.emit_event("valve_closed")

    def open_valve(self) -> None:
        self.valve_open = True


class GasMeter(Meter):
    kind: ClassVar[str] = "gas meter"

    def __init__(self, device_id: str, **kwargs: Any) -> None:
        super().__init__(device_id, **kwargs)
        self.volume_m3 = round(self.rng.uniform(50.0, 3000.0), 3)
        self._flow_m3h = 0.0
        self.valve_open = True

    def _advance(self, now_s: float) -> None:
        self.volume_m3 += self._flow_m3h * self._elapsed_h(now_s)
        if not self.valve_open:
            self._flow_m3h = 0.0
        elif self.rng.random() < 0.2:
            self._flow_m3h = self.rng.uniform(0.2, 1.8)  # cooking, the water heater
        else:
            self._flow_m3h = 0.0

    def telemetry(self) -> dict[str, Any]:
        return {"volume_m3": round(self.volume_m3, 4), "battery_pct": self.battery_pct}

    def close_valve(self) -> None:
        with self._state_lock:
            self.valve_open = False
            self._flow_m3h = 0.0
        self.emit_event("valve_closed")

    def open_valve(self) -> None:
        self.valve_open = True
