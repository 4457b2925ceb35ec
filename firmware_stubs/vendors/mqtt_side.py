"""The MQTT connection every vendor stub shares: connect, publish, subscribe, stop."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

Handler = Callable[[str, bytes], None]


class MqttSide:
    """One vendor device's (or bridge's) MQTT client, MQTT 3.1.1 like the firmware it stands
    for. ``will`` is ``(topic, payload, retain)``; ``on_connect`` publishes what the device
    announces on every (re)connect."""

    def __init__(
        self,
        client_id: str,
        port: int,
        host: str = "127.0.0.1",
        *,
        will: tuple[str, bytes, bool] | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=will[2])
        self.host, self.port = host, port
        self.handlers: dict[str, Handler] = {}
        self.connected = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def login(self, username: str, password: str) -> None:
        """The broker account to connect with (before ``start``)."""
        self.client.username_pw_set(username, password)

    def announce(self) -> None:
        """What the device publishes on every (re)connect (its online state)."""

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.connected.wait(timeout)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(
        self, topic: str, payload: bytes | str | dict[str, Any], retain: bool = False
    ) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload, separators=(",", ":"))
        # waiting for the PUBACK on the client's own network thread (in ``announce``) would
        # stop the loop it waits on
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if threading.current_thread() is not self._loop_thread:
            info.wait_for_publish(10)

    def on(self, topic: str, handler: Handler) -> None:
        """Call ``handler(topic, payload)`` for messages on ``topic`` (an exact topic)."""
        self.handlers[topic] = handler
        if self.connected.is_set():
            self.client.subscribe(topic, qos=1)

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        self._loop_thread = threading.current_thread()
        for topic in self.handlers:
            client.subscribe(topic, qos=1)
        self.announce()
        self.connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        handler = self.handlers.get(msg.topic)
        if handler is not None:
            threading.Thread(target=handler, args=(msg.topic, msg.payload), daemon=True).start()
