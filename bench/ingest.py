"""Ingest throughput: the same queued stream drained by the references and by the gateway.

N realistic meter messages (1,000 devices, 4 fields, QoS 1) are queued in the persistent
sessions of every consumer at once, in one Mosquitto; then each consumer drains its own queue:

- ``mosquitto_sub`` to /dev/null: the practical limit;
- ``diy_paho``: paho-mqtt + influxdb-client, a Point per message (what a user writes by hand);
- the gateway (``courtyard serve``): decoded, journaled, acknowledged after the commit, and
  forwarded to the InfluxDB v2 write API; done only when the server acknowledged every point.

The InfluxDB v2 API is served by VictoriaMetrics (Debian's InfluxDB 1.6 has no v2 API); the
points each consumer stored are counted there afterwards.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from firmware_stubs.flood import flood
from tests.integration.influx_servers import VictoriaMetricsServer
from tests.integration.servers import GatewayProcess, Mosquitto

BENCH = Path(__file__).resolve().parent
SESSIONS = {"ref": "bench-ref", "diy": "bench-diy", "gateway": "courtyard-bench"}


@dataclass
class Servers:
    broker: Mosquitto
    vm: VictoriaMetricsServer


def make_sessions(port: int, client_ids: list[str]) -> None:
    """Persistent sessions subscribed to the native topics, so that the broker queues."""
    for cid in client_ids:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe("community/#", qos=1)[1]
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()


def queue(port: int, messages: int, round_no: int) -> None:
    result = flood(
        "127.0.0.1",
        port,
        devices=1000,
        messages=messages,
        engine="raw",
        start_seq=round_no * messages,
        timeout_s=300,
    )
    if result["acked"] != messages:
        raise SystemExit(f"flood: only {result['acked']} of {messages} acknowledged")


def drain_mosquitto_sub(port: int, messages: int) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-i",
            SESSIONS["ref"],
            "-c",
            "-q",
            "1",
            "-t",
            "community/#",
            "-C",
            str(messages),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=600,
    )
    return messages / (time.monotonic() - t0)


def drain_diy(port: int, messages: int, vm_url: str, bucket: str) -> float:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "diy_paho.py"),
            "--port",
            str(port),
            "--client-id",
            SESSIONS["diy"],
            "--messages",
            str(messages),
            "--influx",
            vm_url,
            "--bucket",
            bucket,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return messages / float(result["seconds"])


def drain_gateway(workdir: Path, servers: Servers, messages: int, bucket: str) -> float:
    gw = GatewayProcess(
        workdir,
        mqtt_url=servers.broker.url,
        influx={
            "url": servers.vm.url,
            "api": "v2",
            "token": "bench",
            "org": "bench",
            "bucket": bucket,
        },
    )
    text = (
        (gw.dir / "courtyard.toml")
        .read_text()
        .replace('client_id = "courtyard-test"', f'client_id = "{SESSIONS["gateway"]}"')
    )
    (gw.dir / "courtyard.toml").write_text(text)
    gw.start(timeout=60)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            written = _metric(gw, "courtyard_influx_points_written_total")
            if written >= messages:
                break
            time.sleep(0.05)
        end_ms = time.time() * 1000
        db = sqlite3.connect(gw.db)
        (first_ms,) = db.execute("SELECT min(received_ms) FROM journal").fetchone()
        db.close()
    finally:
        gw.stop()
    return messages / ((end_ms - first_ms) / 1000)


def _metric(gw: GatewayProcess, name: str) -> float:
    try:
        text = gw.get("/metrics").text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def stored(vm: VictoriaMetricsServer, expected: int, field: str = "meter_power_w") -> int:
    """Points of ``field`` in ``vm``; waits up to 15 s for the server to show what it took."""
    deadline = time.monotonic() + 15
    count = 0
    while time.monotonic() < deadline:
        count = vm.count(field)
        if count >= expected:
            break
        time.sleep(0.5)
    return count
