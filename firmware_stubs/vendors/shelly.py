"""Shelly Gen2/Gen3 devices over MQTT: a Pro 3EM (three phases) and a Plus 2PM (two relays).

As Shelly's API documentation describes them (shelly-api-docs.shelly.cloud, gen2: "MQTT",
"EM", "EMData", "Switch"): ``<prefix>/online`` ``true``/``false`` (retained; the will),
``<prefix>/status/<component>:<id>`` the component's whole status when it changes (with
``mqtt.status_ntf``), ``<prefix>/rpc`` requests answered on ``<src>/rpc``, and
``NotifyStatus`` partial updates on ``<prefix>/events/rpc``. Energies are in Wh.
"""

from __future__ import annotations

import json
import time
from typing import Any

from firmware_stubs.vendors.mqtt_side import MqttSide


class _Shelly(MqttSide):
    def __init__(self, port: int, host: str, prefix: str) -> None:
        super().__init__(prefix, port, host, will=(f"{prefix}/online", b"false", True))
        self.prefix = prefix

    def announce(self) -> None:
        self.publish(f"{self.prefix}/online", "true", retain=True)

    def status(self, component: str, body: dict[str, Any]) -> None:
        self.publish(f"{self.prefix}/status/{component}", body)


class ShellyPro3EM(_Shelly):
    def __init__(
        self, port: int, host: str = "127.0.0.1", *, prefix: str = "shellypro3em-b0b21c10a1b8"
    ) -> None:
        super().__init__(port, host, prefix)
        self.total_wh = [512345.6, 204000.25, 98000.0]

    def report(self, phases_w: tuple[float, float, float] = (2401.6, 406.0, 228.6)) -> None:
        """One ``em:0`` status (power per phase) and one ``emdata:0`` (energy totals, Wh)."""
        volts = (233.7, 236.4, 236.8)
        em: dict[str, Any] = {"id": 0}
        for phase, watts, v in zip("abc", phases_w, volts, strict=True):
            em[f"{phase}_act_power"] = watts
            em[f"{phase}_voltage"] = v
            em[f"{phase}_current"] = round(abs(watts) / v, 3)
            em[f"{phase}_aprt_power"] = round(abs(watts) * 1.03, 1)
        em["total_act_power"] = round(sum(phases_w), 3)
        em["total_current"] = round(sum(em[f"{p}_current"] for p in "abc"), 3)
        self.status("em:0", em)
        for i, watts in enumerate(phases_w):
            self.total_wh[i] = round(self.total_wh[i] + watts / 60, 2)
        data: dict[str, Any] = {"id": 0}
        for phase, total in zip("abc", self.total_wh, strict=True):
            data[f"{phase}_total_act_energy"] = total
            data[f"{phase}_total_act_ret_energy"] = 0.0
        data["total_act"] = round(sum(self.total_wh), 2)
        data["total_act_ret"] = 0.0
        self.status("emdata:0", data)


class ShellyPlus2PM(_Shelly):
    """Two relays (a gate motor on one): ``Switch.Set`` over RPC, status after each change."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", *, prefix: str = "shellyplus2pm-gate"
    ) -> None:
        super().__init__(port, host, prefix)
        self.outputs = [False, False]
        self.energy_wh = [152669.987, 123.585]
        self.on(f"{prefix}/rpc", self._rpc)

    def switch_status(self, channel: int) -> None:
        on = self.outputs[channel]
        power = 11.5 if on else 0.0
        self.status(
            f"switch:{channel}",
            {
                "id": channel,
                "source": "MQTT",
                "output": on,
                "apower": power,
                "voltage": 230.8,
                "current": round(power / 230.8, 3),
                "aenergy": {"total": self.energy_wh[channel], "minute_ts": int(time.time())},
                "temperature": {"tC": 45.0, "tF": 113.0},
            },
        )

    def _rpc(self, _topic: str, payload: bytes) -> None:
        request = json.loads(payload)
        params = request.get("params") or {}
        src = request.get("src") or "user"
        if request.get("method") == "Switch.Set":
            channel = int(params.get("id", 0))
            was = self.outputs[channel]
            self.outputs[channel] = bool(params.get("on"))
            self.publish(
                f"{src}/rpc",
                {"id": request.get("id"), "src": self.prefix, "result": {"was_on": was}},
            )
            self.switch_status(channel)
