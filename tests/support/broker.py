"""A Mosquitto started with the files `courtyard broker-config` writes: per-device accounts,
ACLs, sessions bound to accounts. Only what an operator's own broker adds is added (who it
runs as, persistence, a log)."""

from __future__ import annotations

import contextlib
import getpass
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqtt.broker import free_port
from tests.support.community import community_file, dev
from tests.support.servers import REPO, need, wait_port
from tests.support.wait import wait_for

REGISTRY = community_file(
    buildings={"b3": "c1"},
    devices=[
        dev("gate-north", secret="00112233445566778899aabbccddeeff"),
        dev("b3-entrance", building="b3", secret="ffeeddccbbaa99887766554433221100"),
        dev("m-1", cls="meter"),
    ],
)
"""Two doors and a meter in one community: four accounts with the gateway's."""


def broker_config(community: Path, out: Path, *extra: str) -> str:
    """Run ``courtyard broker-config`` as a user would; its standard output."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "broker-config",
            "--community",
            str(community),
            "--out",
            str(out),
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


@dataclass
class GeneratedBroker:
    port: int
    creds: dict[str, str]
    """Account -> password, from the generated credentials.toml."""
    log: Path
    out: Path
    """The folder broker-config wrote."""
    stdout: str
    """What broker-config printed."""


@contextlib.contextmanager
def broker_from_generated_files(
    workdir: Path, registry: str, *, persistence: bool = True
) -> Iterator[GeneratedBroker]:
    community = workdir / "community.toml"
    community.write_text(registry)
    out = workdir / "broker-auth"
    port = free_port()
    stdout = broker_config(community, out, "--listen", f"127.0.0.1:{port}")
    creds = tomllib.loads((out / "credentials.toml").read_text())["accounts"]
    data = workdir / "broker-data"
    data.mkdir()
    log = workdir / "mosquitto.log"
    conf = workdir / "mosquitto.conf"
    stored = (
        f"persistence true\npersistence_location {data}/\n"
        if persistence
        else ("persistence false\n")
    )
    conf.write_text(
        (out / "mosquitto.conf").read_text()
        + f"\nuser {getpass.getuser()}\n{stored}log_dest file {log}\nlog_type all\n"
    )
    proc = subprocess.Popen([need("mosquitto", "mosquitto"), "-c", str(conf)])
    try:
        wait_port("127.0.0.1", port)
        yield GeneratedBroker(port, creds, log, out, stdout)
    finally:
        proc.terminate()
        proc.wait(10)


class Device:
    """A device's own account over paho, counting what the broker acknowledged to it. A
    refused login raises ConnectionRefusedError; ``user=None`` connects without an account."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        clean_start: bool = True,
    ) -> None:
        self.received: list[str] = []
        self.connects = 0
        self.disconnects = 0
        self.refused: Any = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or user or "",
            protocol=mqtt.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        wait_for(lambda: self.connects or self.refused, 10, f"{user} connected")
        if self.refused is not None:
            self.close()
            raise ConnectionRefusedError(f"{user}: {self.refused}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.refused = rc
        else:
            self.connects += 1

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnects += 1

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg.topic)

    def publish(self, topic: str, payload: bytes, timeout: float = 10) -> bool:
        """True once the broker acknowledged it (PUBACK)."""
        info = self.client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):  # the connection went away meanwhile
            return False
        return info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
