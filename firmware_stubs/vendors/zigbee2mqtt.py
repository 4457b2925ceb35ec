"""A Zigbee2MQTT bridge with a door contact, a leak sensor, a metering plug and a lock.

Topics and payloads as Zigbee2MQTT publishes them (zigbee2mqtt.io, "MQTT topics and
messages"; the devices' "Exposes" pages: MCCGQ11LM contact, SJCGQ11LM leak, TS011F plug,
a lock with ``state``/``lock_state``): ``<base>/<friendly name>`` a JSON state with every
value (cached states: the whole state each time), ``<base>/<name>/availability``
``{"state": "online"}``, ``<base>/bridge/state`` the bridge's own, ``<base>/<name>/set``
the commands it takes.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from firmware_stubs.vendors.mqtt_side import MqttSide


class Zigbee2MqttBridge(MqttSide):
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        base_topic: str = "zigbee2mqtt",
        contact: str = "0x00158e5202e6be17",
        leak: str = "Basement Leak",
        plug: str = "Laundry Plug",
        lock: str = "Front Door Lock",
    ) -> None:
        super().__init__(
            f"zigbee2mqtt-{base_topic}",
            port,
            host,
            will=(f"{base_topic}/bridge/state", b'{"state":"offline"}', True),
        )
        self.base = base_topic
        self.names = {"contact": contact, "leak": leak, "plug": plug, "lock": lock}
        self._lock = threading.Lock()
        self.states: dict[str, dict[str, Any]] = {
            contact: {"battery": 100, "contact": True, "voltage": 3015, "linkquality": 110},
            leak: {"battery": 80, "water_leak": False, "voltage": 2985, "linkquality": 57},
            plug: {
                "state": "ON",
                "power": 0,
                "energy": 0.0,
                "voltage": 230,
                "current": 0.0,
                "linkquality": 120,
            },
            lock: {"state": "LOCK", "lock_state": "locked", "battery": 90, "linkquality": 90},
        }
        self.on(f"{base_topic}/{lock}/set", self._lock_set)
        self.on(f"{base_topic}/{plug}/set", self._plug_set)
        self.commands: list[dict[str, Any]] = []

    def announce(self) -> None:
        self.publish(f"{self.base}/bridge/state", {"state": "online"}, retain=True)
        for name, state in self.states.items():
            self.publish(f"{self.base}/{name}/availability", {"state": "online"}, retain=True)
            self.publish(f"{self.base}/{name}", state, retain=True)

    def _update(self, name: str, **values: Any) -> None:
        with self._lock:
            self.states[name].update(values)
            state = dict(self.states[name])
        self.publish(f"{self.base}/{name}", state)

    def set_door_open(self, is_open: bool) -> None:
        """The contact sensor: ``contact`` false while the door is open (magnet apart)."""
        self._update(self.names["contact"], contact=not is_open)

    def set_leak(self, wet: bool) -> None:
        self._update(self.names["leak"], water_leak=wet)

    def meter(self, power_w: float, hours: float = 1 / 60) -> None:
        """The plug draws ``power_w`` for ``hours``: power W, energy kWh, current A."""
        with self._lock:
            energy = round(self.states[self.names["plug"]]["energy"] + power_w * hours / 1000, 3)
        self._update(
            self.names["plug"], power=power_w, energy=energy, current=round(power_w / 230, 3)
        )

    def log(self, message: str) -> None:
        """The bridge's own log line (not a device message)."""
        self.publish(f"{self.base}/bridge/logging", {"level": "info", "message": message})

    def _lock_set(self, _topic: str, payload: bytes) -> None:
        command = json.loads(payload)
        self.commands.append(command)
        wanted = str(command.get("state", "")).upper()
        if wanted in ("LOCK", "UNLOCK"):
            self._update(
                self.names["lock"],
                state=wanted,
                lock_state="locked" if wanted == "LOCK" else "unlocked",
            )

    def _plug_set(self, _topic: str, payload: bytes) -> None:
        command = json.loads(payload)
        self.commands.append(command)
        wanted = str(command.get("state", "")).upper()
        if wanted in ("ON", "OFF"):
            self._update(self.names["plug"], state=wanted)
