"""A Tasmota plug with energy monitoring (Sonoff POW), default FullTopic ``%prefix%/%topic%/``.

As the Tasmota documentation describes it ("MQTT", "Commands", "Energy"): ``tele/<t>/LWT``
``Online``/``Offline`` (retained; the will), ``tele/<t>/STATE`` and ``tele/<t>/SENSOR`` every
TelePeriod (``ENERGY`` with Total/Yesterday/Today kWh, Power W, ApparentPower VA,
ReactivePower var, Factor, Voltage V, Current A), ``cmnd/<t>/POWER`` ON/OFF/TOGGLE answered on
``stat/<t>/RESULT`` ``{"POWER":"ON"}`` and ``stat/<t>/POWER`` ``ON``.
"""

from __future__ import annotations

import time

from firmware_stubs.vendors.mqtt_side import MqttSide


class TasmotaPlug(MqttSide):
    def __init__(self, port: int, host: str = "127.0.0.1", *, topic: str = "pow1") -> None:
        super().__init__(topic, port, host, will=(f"tele/{topic}/LWT", b"Offline", True))
        self.topic = topic
        self.power_on = True
        self.total_kwh = 6.294
        self.today_kwh = 0.954
        self.on(f"cmnd/{topic}/POWER", self._power)

    def announce(self) -> None:
        self.publish(f"tele/{self.topic}/LWT", "Online", retain=True)

    def sensor(self, power_w: float = 2635.0, voltage_v: float = 227.0) -> None:
        """One TelePeriod's ``SENSOR`` message."""
        watts = power_w if self.power_on else 0.0
        self.total_kwh = round(self.total_kwh + watts / 60_000, 3)
        self.today_kwh = round(self.today_kwh + watts / 60_000, 3)
        current = round(watts / voltage_v, 3)
        self.publish(
            f"tele/{self.topic}/SENSOR",
            {
                "Time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "ENERGY": {
                    "TotalStartTime": "2019-06-23T14:23:42",
                    "Total": self.total_kwh,
                    "Yesterday": 5.340,
                    "Today": self.today_kwh,
                    "Period": 44,
                    "Power": watts,
                    "ApparentPower": round(watts * 1.006),
                    "ReactivePower": round(watts * 0.107),
                    "Factor": 0.99 if watts else 0.0,
                    "Voltage": voltage_v,
                    "Current": current,
                },
            },
        )

    def _power(self, _topic: str, payload: bytes) -> None:
        word = payload.decode(errors="replace").strip().upper()
        if word in ("ON", "1"):
            self.power_on = True
        elif word in ("OFF", "0"):
            self.power_on = False
        elif word in ("TOGGLE", "2"):
            self.power_on = not self.power_on
        state = "ON" if self.power_on else "OFF"
        self.publish(f"stat/{self.topic}/RESULT", {"POWER": state})
        self.publish(f"stat/{self.topic}/POWER", state)
