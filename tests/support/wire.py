"""An independent pair of eyes on the broker: a plain paho client that records everything
under a prefix (the doors' commands, acks and events, as an attacker could capture them)."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt


class Recorder:
    def __init__(self, port: int, prefix: str = "community", client_id: str = "test-recorder"):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def on(self, device: str, message: str) -> list[dict[str, Any]]:
        """What was seen on ``.../{device}/{message}``, decoded, oldest first."""
        with self._lock:
            items = list(self.messages)
        return [json.loads(p) for t, p in items if t.endswith(f"/{device}/{message}") and p]

    def events(self, device: str, name: str) -> list[dict[str, Any]]:
        return [e for e in self.on(device, "event") if e.get("event") == name]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
