"""Ingest throughput: the same queued stream drained by the references and by the gateway.

N realistic meter messages (1,000 devices, 4 fields, QoS 1) are queued in the persistent
sessions of every consumer at once, in one Mosquitto; then each consumer drains its own queue:

- ``mosquitto_sub`` to /dev/null: the practical limit;
- ``diy_paho``: paho-mqtt + influxdb-client, a Point per message (what a user writes by hand);
- the gateway (``courtyard serve``): decoded, journaled, acknowledged after the commit, and
  forwarded to the InfluxDB v2 write API; done only when the server acknowledged every point.

While the gateway drains, the CPU time of every process of the pipeline is counted (the
gateway's main process, its InfluxDB sink process, the broker, the InfluxDB server), per
message, less what a gateway start costs on its own (:func:`start_cost`): where the time goes
when the gateway is slower than the reference.

The InfluxDB v2 API is served by VictoriaMetrics (Debian's InfluxDB 1.6 has no v2 API); the
points each consumer stored are counted there afterwards.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil

from firmware_stubs.flood import flood
from tests.support.influx import VictoriaMetricsServer
from tests.support.servers import GatewayProcess, Mosquitto

BENCH = Path(__file__).resolve().parent
SESSIONS = {
    "ref": "bench-ref",
    "diy": "bench-diy",
    "gateway": "courtyard-bench",
    "journal": "courtyard-bench-journal",
    # the same two drains with ``[store] durability = "normal"``: what syncing every commit costs
    "gateway_normal": "courtyard-bench-normal",
    "journal_normal": "courtyard-bench-journal-normal",
}


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


@dataclass
class GatewayDrain:
    rate: float  # messages per second, first receive to the last point acknowledged by InfluxDB
    cpu_us: dict[str, float]  # CPU per message by process: main, sink, broker, influx


def gateway_process(
    workdir: Path,
    servers: Servers,
    bucket: str | None,
    client_id: str,
    durability: str = "full",
) -> GatewayProcess:
    """``courtyard serve`` on the bench's broker, forwarding to ``bucket`` (None: no InfluxDB),
    with ``[store] durability``."""
    influx = {"url": servers.vm.url, "api": "v2", "token": "bench", "org": "bench"}
    gw = GatewayProcess(
        workdir,
        mqtt_url=servers.broker.url,
        influx=None if bucket is None else {**influx, "bucket": bucket},
    )
    config = gw.dir / "courtyard.toml"
    text = config.read_text().replace('client_id = "courtyard-test"', f'client_id = "{client_id}"')
    store = 'path = "courtyard.db"'
    config.write_text(text.replace(store, f'{store}\ndurability = "{durability}"'))
    return gw


def drain_journal_only(
    workdir: Path, servers: Servers, messages: int, durability: str = "full"
) -> float:
    """The gateway without InfluxDB: messages per second from the first receive until the
    journal holds them all (every one committed and acknowledged)."""
    session = SESSIONS["journal" if durability == "full" else "journal_normal"]
    gw = gateway_process(workdir, servers, None, session, durability)

    def journaled(db: sqlite3.Connection) -> bool:
        (head,) = db.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        return bool(head >= messages)

    try:
        return _drain(gw, messages, journaled, "journal")
    finally:
        gw.stop()


def start_cost(workdir: Path, servers: Servers) -> tuple[float, float]:
    """CPU seconds of a gateway start with nothing to drain: (main process, its children)."""
    gw = gateway_process(workdir, servers, "start-cost", "courtyard-start-cost")
    gw.start(timeout=60)
    try:
        time.sleep(1.0)
        assert gw.proc is not None
        return cpu_seconds(gw.proc.pid)
    finally:
        gw.stop()


def drain_gateway(
    workdir: Path,
    servers: Servers,
    messages: int,
    bucket: str,
    idle: tuple[float, float],
    durability: str = "full",
) -> GatewayDrain:
    """The gateway forwarding to InfluxDB: done once the sink's cursor, saved when InfluxDB
    acknowledged a batch, passes the first ``messages`` journal rows, and ``/metrics``
    agrees. Also the CPU per message of every process of the pipeline, less ``idle`` (what a
    gateway start costs: main process, children)."""
    session = SESSIONS["gateway" if durability == "full" else "gateway_normal"]
    gw = gateway_process(workdir, servers, bucket, session, durability)
    others = {"broker": servers.broker.proc, "influx": servers.vm}
    before = {name: cpu_seconds(p.pid)[0] for name, p in others.items() if p and p.pid}

    def sent(db: sqlite3.Connection) -> bool:
        row = db.execute("SELECT position FROM cursors WHERE name = 'influx'").fetchone()
        return bool(row and row[0] >= messages) and (
            _metric(gw, "courtyard_influx_points_written_total") >= messages
        )

    try:
        rate = _drain(gw, messages, sent, "send to InfluxDB")
        assert gw.proc is not None
        main, children = cpu_seconds(gw.proc.pid)
        after = {name: cpu_seconds(p.pid)[0] for name, p in others.items() if p and p.pid}
    finally:
        gw.stop()
    cpu = {"main": main - idle[0], "sink": children - idle[1]}
    cpu |= {name: after[name] - before[name] for name in before}
    return GatewayDrain(
        rate, {name: max(0.0, seconds) / messages * 1e6 for name, seconds in cpu.items()}
    )


def _drain(
    gw: GatewayProcess,
    messages: int,
    done: Callable[[sqlite3.Connection], bool],
    what: str,
    timeout: float = 900,
) -> float:
    """Start ``gw`` and read its store every 10 ms until ``done``; messages per second from
    the first receive until then (the gateway is left running). The store is read rather than
    ``/metrics`` polled: that, every 10 ms, would take CPU from the gateway being measured."""
    gw.start(timeout=60)
    deadline = time.monotonic() + timeout
    with contextlib.closing(sqlite3.connect(gw.db, timeout=1)) as db:
        while True:
            try:
                if done(db):
                    break
            except sqlite3.OperationalError:  # the gateway is still creating the store
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway did not {what} {messages} messages in {timeout} s")
            time.sleep(0.01)
        end_ms = time.time() * 1000
        (first_ms,) = db.execute("SELECT min(received_ms) FROM journal").fetchone()
    return messages / ((end_ms - first_ms) / 1000)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of a process and of all its children."""
    proc = psutil.Process(pid)
    own = sum(proc.cpu_times()[:2])
    children = 0.0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            children += sum(child.cpu_times()[:2])
    return own, children


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
