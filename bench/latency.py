"""Storage latency: a device's publish to its row in the gateway's journal, under load.

A private Mosquitto, the gateway as a child process (``courtyard serve``) and a background
flood of meter telemetry (1,000 devices, QoS 1, 5,000 readings/s by default, the built-in raw
MQTT publisher in a process of its own). Once the load is steady, probe messages are published
one by one with paho (QoS 1) from a device of their own (``probe-1``), each with a unique
``seq`` and ``ts`` = its publish time in ms.

Method: ``received_ms`` in the journal is when the gateway received a message, not when the
row was committed, so it cannot tell the time to storage. Instead a thread of the bench polls
the journal (a read-only SQLite connection on ``courtyard.db``, WAL mode lets it read while
the gateway writes) every ``POLL_S`` for rows of the probe device after the last id it saw,
and timestamps each probe's row when it first appears. The latency of a probe is that moment
minus its publish time (both taken in this process, one clock); the poll period bounds the
error (it adds 0 to ``POLL_S``, half of it on average).

    .venv/bin/python -m bench.latency [--rate 5000] [--probes 300] [--interval 0.02]

Prints one JSON line: p50/p99/max in ms, probes stored, and the background rate achieved.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.servers import GatewayProcess, Mosquitto  # noqa: E402

POLL_S = 0.002
PROBE = "probe-1"
BACKGROUND_RATE = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def background(port: int, rate: int, seconds: float, devices: int = 1000) -> subprocess.Popen[str]:
    """The flood generator in a process of its own, publishing ``rate`` readings/s for
    about ``seconds`` (the raw engine; its JSON summary comes on stdout at the end)."""
    return flood_process(port, devices, int(rate * seconds), rate, engine="raw")


def flood_process(
    port: int, devices: int, messages: int, rate: int, *, engine: str, extra: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """``python -m firmware_stubs flood`` in a process of its own (summary on stdout)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_stubs",
            "flood",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--devices",
            str(devices),
            "--messages",
            str(messages),
            "--rate",
            str(rate),
            "--engine",
            engine,
            "--quiet",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def journal_rate(db: Path, seconds: float) -> float:
    """Rows/s the gateway journals, counted over ``seconds`` (the load really achieved)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (a,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        t0 = time.monotonic()
        time.sleep(seconds)
        (b,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        return (b - a) / (time.monotonic() - t0)
    finally:
        conn.close()


def finish(flood: subprocess.Popen[str] | None) -> dict[str, Any]:
    """Stop the background flood; its summary if it had finished, else ``{}``."""
    if flood is None:
        return {}
    if flood.poll() is None:
        flood.kill()
        flood.wait()
        return {}
    out = flood.stdout.read() if flood.stdout else ""
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


class JournalWatch(threading.Thread):
    """Polls the journal for the probe device's rows; ``seen[seq]`` = when it first saw one."""

    def __init__(self, db: Path, device: str) -> None:
        super().__init__(name="journal-watch", daemon=True)
        self.db, self.device = db, device
        self.seen: dict[int, float] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, check_same_thread=False)
        dev_id: int | None = None
        last = 0
        while not self.halt.is_set():
            if dev_id is None:
                row = conn.execute("SELECT id FROM devices WHERE device = ?", (self.device,))
                found = row.fetchone()
                if found is None:
                    time.sleep(POLL_S)
                    continue
                dev_id = int(found[0])
            rows = conn.execute(
                "SELECT id, seq FROM journal WHERE id > ? AND device_id = ?", (last, dev_id)
            ).fetchall()
            now = time.perf_counter()
            for rid, seq in rows:
                self.seen.setdefault(int(seq), now)
                last = max(last, int(rid))
            time.sleep(POLL_S)
        conn.close()


def run(rate: int, probes: int, interval: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="courtyard-latency-") as tmp:
        broker = Mosquitto(Path(tmp) / "broker")
        broker.start()
        gw = GatewayProcess(Path(tmp) / "gw", mqtt_url=broker.url)
        flood = None
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-probe")
        watch = JournalWatch(gw.db, PROBE)
        try:
            gw.start()
            achieved = 0.0
            if rate > 0:
                flood = background(broker.port, rate, probes * interval + 20)
                time.sleep(3)  # steady load (the 1,000 flood devices discovered) first
            achieved = journal_rate(gw.db, 2.0)
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            sent: dict[int, float] = {}
            # a first probe registers the device before the measured ones
            first = {"ts": int(time.time() * 1000), "seq": 0, "power_w": 0.0}
            pub.publish(f"community/c1/meter/{PROBE}/telemetry", json.dumps(first), qos=1)
            watch.start()
            deadline = time.monotonic() + 15
            while 0 not in watch.seen and time.monotonic() < deadline:
                time.sleep(0.01)
            for seq in range(1, probes + 1):
                body = json.dumps(
                    {
                        "ts": int(time.time() * 1000),
                        "seq": seq,
                        "energy_kwh": 1000.0 + seq / 1000,
                        "power_w": 500.0,
                        "voltage_v": 230.0,
                        "current_a": 2.17,
                    }
                )
                sent[seq] = time.perf_counter()
                pub.publish(f"community/c1/meter/{PROBE}/telemetry", body, qos=1)
                time.sleep(interval)
            deadline = time.monotonic() + 30
            while len(set(sent) & set(watch.seen)) < probes and time.monotonic() < deadline:
                time.sleep(0.05)
            watch.halt.set()
            watch.join(5)
            lat = [(watch.seen[s] - t0) * 1000 for s, t0 in sent.items() if s in watch.seen]
            if not lat:
                raise RuntimeError(f"no probe reached the journal:\n{gw.logs()[-3000:]}")
            return {
                "probes": probes,
                "stored": len(lat),
                "p50_ms": round(statistics.median(lat), 1),
                "p99_ms": round(percentile(lat, 0.99), 1),
                "max_ms": round(max(lat), 1),
                "poll_ms": POLL_S * 1000,
                "background_journaled_per_s": round(achieved),
            }
        finally:
            watch.halt.set()
            pub.loop_stop()
            finish(flood)
            gw.stop()
            broker.stop()


def bench(quick: bool) -> dict[str, list[float]]:
    """``latency.stored_{p50,p99,max}_ms``, one value per run (quick: 1 run, full: 3)."""
    out: dict[str, list[float]] = {
        "latency.stored_p50_ms": [],
        "latency.stored_p99_ms": [],
        "latency.stored_max_ms": [],
    }
    for _ in range(1 if quick else 3):
        r = run(BACKGROUND_RATE, 150 if quick else 400, 0.02)
        print(f"[latency] {json.dumps(r)}", file=sys.stderr, flush=True)
        if r["stored"] < r["probes"]:
            raise RuntimeError(f"only {r['stored']} of {r['probes']} probes were stored")
        for q in ("p50", "p99", "max"):
            out[f"latency.stored_{q}_ms"].append(r[f"{q}_ms"])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rate", type=int, default=BACKGROUND_RATE, help="background readings/s")
    p.add_argument("--probes", type=int, default=300)
    p.add_argument("--interval", type=float, default=0.02, help="seconds between probes")
    a = p.parse_args()
    print(json.dumps(run(a.rate, a.probes, a.interval)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
