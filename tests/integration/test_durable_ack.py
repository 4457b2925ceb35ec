"""Durable acknowledgement, counted: the gateway process (``courtyard serve``) runs under
``strace``, which records every ``fsync``/``fdatasync``, every write to the journal's WAL file
and every send on the connection to the broker; devices publish QoS 1 events and readings.

With ``[store] durability = "full"`` (the default):
- the event loop's thread synced the WAL at least once per group commit (the gateway's own
  ``courtyard_journal_commits_total``), and
- no byte went to the broker (a PUBACK is one) while WAL frames that thread had written were
  not yet synced.

``durability = "normal"`` runs the same load as the control: there the syncs fall far short of
the commits and PUBACKs leave ahead of the sync, so the counting is known to see the difference.

Nothing here depends on timing: a busy machine makes fewer, larger commits, and each of them
still needs its sync. strace stops the gateway only at the traced calls (``--seccomp-bpf``).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psutil
import pytest

from tests.support.servers import REPO, GatewayProcess, Mosquitto, need
from tests.support.wait import wait_for

EVENTS = 400  # events commit within the 5 ms interval: each burst is a group commit or a few
READINGS = 4000
TRACED = "fsync,fdatasync,pwrite64,write,sendto,sendmsg"

# "1234  fdatasync(7</tmp/x/courtyard.db-wal>) = 0", "1234  sendto(11<TCP:[127.0.0.1:39904->
# 127.0.0.1:1883]>, ...": the thread, the call, the fd's path or connection (a call that
# another thread's interrupts ends in " <unfinished ...>", resumed on a later line)
_LINE = re.compile(r"^(\d+)\s+(\w+)\((\d+)<(.*?)>(?:[,)]| <unfinished)")


@dataclass
class Trace:
    wal_syncs: int  # fsync/fdatasync of the WAL by the event loop's thread
    wal_writes: int
    sends_to_broker: int
    sends_ahead_of_sync: int  # sends to the broker while that thread had unsynced WAL frames


def read_trace(path: Path, loop_tid: int, wal: str, broker_port: int) -> Trace:
    to_broker = f":{broker_port}]"
    syncs = writes = sends = ahead = 0
    unsynced = False
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if m is None or int(m[1]) != loop_tid:
            continue
        call, target = m[2], m[4]
        if target == wal:
            if call in ("fsync", "fdatasync"):
                syncs += 1
                unsynced = False
            elif call in ("pwrite64", "write"):
                writes += 1
                unsynced = True
        elif call in ("sendto", "sendmsg", "write") and target.endswith(to_broker):
            sends += 1
            ahead += unsynced
    return Trace(syncs, writes, sends, ahead)


class TracedGateway:
    """``courtyard serve`` as a child of ``strace -f`` (a tracer that is the gateway's parent
    needs no ptrace permission beyond the default)."""

    def __init__(self, gw: GatewayProcess, durability: str) -> None:
        self.gw = gw
        self.trace = gw.dir / "strace.txt"
        self.durability = durability
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        strace = need("strace", "strace")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COURTYARD_STORE_DURABILITY": self.durability}
        with self.gw.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(strace, "-f", "-qq", "--seccomp-bpf", "-yy", "-s", "0"),
                    *("-e", f"trace={TRACED}", "-o", str(self.trace)),
                    *(sys.executable, "-m", "gateway.cli", "serve"),
                    *("--config", str(self.gw.dir / "courtyard.toml")),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.gw.logs()[-5000:]}")
            try:
                r = httpx.get(f"{self.gw.api}/healthz", timeout=1)
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and bool(r.json().get("mqtt_connected"))

        wait_for(ready, timeout=timeout, what="the traced gateway")

    @property
    def gateway_pid(self) -> int:
        """The gateway's process id: also its main thread's, where the event loop runs."""
        assert self.proc is not None
        (child,) = psutil.Process(self.proc.pid).children()
        return int(child.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.gateway_pid, signal.SIGTERM)
            except (ValueError, psutil.Error, ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def traced(
    tmp_path: Path, mosquitto: Mosquitto, request: pytest.FixtureRequest
) -> Iterator[TracedGateway]:
    gw = GatewayProcess(tmp_path / "gateway", mqtt_url=mosquitto.url)
    t = TracedGateway(gw, request.param)
    yield t
    t.stop()


def publish(port: int) -> None:
    """Bursts of events and readings from 50 devices, every PUBACK from the broker awaited."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="durable-devices")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        per_event = READINGS // EVENTS
        for i in range(EVENTS):
            dev = f"m-{i % 50:03d}"
            base = f"community/c1/meter/{dev}"
            infos.append(client.publish(f"{base}/event", f'{{"event":"tamper","seq":{i}}}', qos=1))
            for j in range(per_event):
                seq = i * per_event + j
                body = f'{{"seq":{seq},"power_w":{seq % 997},"energy_kwh":{seq}}}'
                infos.append(client.publish(f"{base}/telemetry", body, qos=1))
            if i % 4 == 3:
                time.sleep(0.01)  # a burst, then a pause: many commits, not one
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def journaled(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (n,) = conn.execute("SELECT count(*) FROM journal").fetchone()
    return int(n)


def commits(gw: GatewayProcess) -> int:
    for line in gw.get("/metrics").text.splitlines():
        if line.startswith("courtyard_journal_commits_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no courtyard_journal_commits_total in /metrics")


def run(traced: TracedGateway, mosquitto: Mosquitto) -> tuple[int, Trace]:
    traced.start()
    loop_tid = traced.gateway_pid
    publish(mosquitto.port)
    wait_for(lambda: journaled(traced.gw.db) >= EVENTS + READINGS, timeout=60, what="the journal")
    n = commits(traced.gw)
    traced.stop()
    wal = str(traced.gw.db) + "-wal"
    return n, read_trace(traced.trace, loop_tid, wal, mosquitto.port)


@pytest.mark.parametrize("traced", ["full"], indirect=True)
def test_every_group_commit_is_synced_before_its_acks(traced, mosquitto):
    n, trace = run(traced, mosquitto)
    assert n >= 20, f"only {n} group commits: the load did not exercise the ingest"
    assert trace.wal_writes > 0, "no writes to the WAL traced: the trace misses the journal"
    assert trace.sends_to_broker > 0, "no sends to the broker traced"
    assert trace.wal_syncs >= n, f"{trace.wal_syncs} syncs of the WAL for {n} group commits"
    assert trace.sends_ahead_of_sync == 0, f"{trace}"


@pytest.mark.parametrize("traced", ["normal"], indirect=True)
def test_normal_durability_acks_ahead_of_the_sync(traced, mosquitto):
    """The control: what ``durability = "normal"`` risks, seen by the same counting."""
    n, trace = run(traced, mosquitto)
    assert n >= 20, f"only {n} group commits: the load did not exercise the ingest"
    assert trace.wal_syncs < n / 2, f"{trace.wal_syncs} syncs of the WAL for {n} group commits"
    assert trace.sends_ahead_of_sync > 0, f"{trace}"
