"""Sustained ingest: what a steady stream costs the gateway, and whether it keeps up.

A private Mosquitto, an InfluxDB v2 write API (VictoriaMetrics) and the gateway (``courtyard
serve`` as a child process, journal and InfluxDB sink); the flood generator publishes meter
telemetry (1,000 devices, 4 fields, QoS 1) at a fixed rate. After a warm-up, for a window of
``seconds``: the rate the journal really grew at (against the offered rate), and the CPU the
gateway's main process and its sink process used per message and as a share of one core. At
the end, how far the sink is behind the journal (rows not yet in InfluxDB).

DESIGN.md's scale target is a sustained 40,000 messages per second on 2 cores; here the broker
and the generator share those 2 cores with the gateway.

    .venv/bin/python -m bench.steady [--rates 5000,40000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest import Servers, cpu_seconds, gateway_process  # noqa: E402
from bench.latency import finish, flood_process  # noqa: E402
from tests.support.influx import VictoriaMetricsServer  # noqa: E402
from tests.support.servers import Mosquitto  # noqa: E402

WARMUP_S = 3.0


def run(rate: int, seconds: float, work: Path) -> dict[str, Any]:
    broker = Mosquitto(work / "broker")
    broker.start()
    vm = VictoriaMetricsServer(work / "vm")
    vm.start()
    flood = None
    try:
        gw = gateway_process(work / "gateway", Servers(broker, vm), "steady", "courtyard-steady")
        gw.start(timeout=60)
        try:
            total = int(rate * (WARMUP_S + seconds + 5))
            flood = flood_process(broker.port, 1000, total, rate, engine="raw")
            time.sleep(WARMUP_S)
            assert gw.proc is not None
            with contextlib.closing(sqlite3.connect(gw.db, timeout=1)) as db:
                rows0 = _head(db)
                main0, sink0 = cpu_seconds(gw.proc.pid)
                t0 = time.monotonic()
                time.sleep(seconds)
                main1, sink1 = cpu_seconds(gw.proc.pid)
                rows1 = _head(db)
                elapsed = time.monotonic() - t0
                (cursor,) = db.execute(
                    "SELECT coalesce(max(position), 0) FROM cursors WHERE name = 'influx'"
                ).fetchone()
        finally:
            finish(flood)
            gw.stop()
    finally:
        vm.stop()
        broker.stop()
    n = rows1 - rows0
    return {
        "rate": rate,
        "journaled_per_s": round(n / elapsed),
        "kept_up": round(n / elapsed / rate, 3),
        "main_us_per_msg": round((main1 - main0) / n * 1e6, 2),
        "sink_us_per_msg": round((sink1 - sink0) / n * 1e6, 2),
        "main_core_pct": round((main1 - main0) / elapsed * 100, 1),
        "sink_core_pct": round((sink1 - sink0) / elapsed * 100, 1),
        "sink_behind_rows": max(0, rows1 - cursor),
    }


def _head(db: sqlite3.Connection) -> int:
    (head,) = db.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
    return int(head)


def bench(quick: bool) -> dict[str, list[float]]:
    """``steady.<rate>.*`` for 5,000 and 40,000 msg/s (quick: 5 s windows, full: 10 s)."""
    out: dict[str, list[float]] = {}
    for rate in (5000, 40000):
        work = Path(tempfile.mkdtemp(prefix="courtyard-steady-"))
        try:
            r = run(rate, 5.0 if quick else 10.0, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"[steady] {json.dumps(r)}", file=sys.stderr, flush=True)
        tag = f"steady.{rate // 1000}k"
        for key in ("kept_up", "main_us_per_msg", "main_core_pct", "sink_core_pct"):
            out[f"{tag}.{key}"] = [float(r[key])]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="5000,40000", help="messages/s, comma-separated")
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    for rate in (int(x) for x in a.rates.split(",")):
        with tempfile.TemporaryDirectory(prefix="courtyard-steady-") as tmp:
            print(json.dumps(run(rate, a.seconds, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
