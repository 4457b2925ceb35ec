"""Fixtures that start real servers on free ports: Mosquitto and the gateway process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.servers import GatewayProcess, Mosquitto
from tests.support.wait import wait_for

__all__ = ["Publisher", "wait_for"]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    made: list[GatewayProcess] = []

    def make(**kwargs: object) -> GatewayProcess:
        gw = GatewayProcess(tmp_path / f"gateway{len(made)}", **kwargs)  # type: ignore[arg-type]
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.stop()


class Publisher:
    """A plain paho client standing in for devices (the independent side of the wire)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=mqtt.MQTTv311
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto.port)
    yield p
    p.close()
