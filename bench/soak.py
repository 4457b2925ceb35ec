"""Soak: a steady load for a long time, through a broker restart and an InfluxDB outage.

A private Mosquitto, InfluxDB 1.x (``influxd``, the v1 write API) as the sink, the gateway as a
child process (``courtyard serve``), and the flood generator publishing meter telemetry from
1,000 devices at 2,000 readings/s (QoS 1, the paho engine, which reconnects and sends its
unacknowledged messages again) for ``SOAK_MINUTES`` minutes (default 30). In the middle:

- at 30 % of the run the broker is stopped cleanly and started again 5 s later;
- at 50 % InfluxDB is stopped for 60 s, then started again.

Afterwards, once the gateway has caught up: ``lost_journal`` = unique messages published -
telemetry rows in the journal, ``lost_influx`` = unique messages - points in InfluxDB (both
must be 0). The gateway's resident memory is sampled every 10 s; the slope (bytes per minute,
least squares) over the whole run and over its second half, with the first and last sample,
tells whether memory is flat.

    make soak                           # 30 minutes (not in CI)
    SOAK_MINUTES=3 .venv/bin/python -m bench.soak

Prints a JSON summary and writes bench/soak.json; exits 1 if anything was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.latency import flood_process  # noqa: E402
from tests.support.influx import InfluxdServer  # noqa: E402
from tests.support.servers import GatewayProcess, Mosquitto  # noqa: E402

RESULT = Path(__file__).resolve().parent / "soak.json"
RATE = 2000
DEVICES = 1000
SAMPLE_S = 10.0
BROKER_DOWN_S = 5.0
INFLUX_DOWN_S = 60.0
DATABASE = "soak"


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 with fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def journaled(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM journal WHERE kind = 0").fetchone()[0])
    finally:
        conn.close()


def influx_points(influx: InfluxdServer) -> int:
    try:
        return influx.count(DATABASE, "meter", "power_w")
    except Exception:  # not up yet, or busy: counted again later
        return -1


def wait_for(what: str, count: Any, target: int, stall_s: float) -> int:
    """Poll ``count()`` until it reaches ``target`` or stops moving for ``stall_s``."""
    last, last_move = -1, time.monotonic()
    while True:
        n = int(count())
        if n >= target:
            return n
        now = time.monotonic()
        if n != last:
            last, last_move = n, now
        elif now - last_move > stall_s:
            log(f"{what}: stuck at {n:,} of {target:,}")
            return max(n, 0)
        time.sleep(2)


def start_flood(port: int, messages: int) -> subprocess.Popen[str]:
    # the paho engine reconnects and resends across the broker restart; the raw one stops
    return flood_process(port, DEVICES, messages, RATE, engine="paho", extra=("--timeout", "300"))


def soak(minutes: float, work: Path) -> dict[str, Any]:
    seconds = minutes * 60
    broker = Mosquitto(work / "broker")
    influx = InfluxdServer(work / "influxd")
    broker.start()
    influx.start()
    influx.create_database(DATABASE)
    gw = GatewayProcess(
        work / "gw",
        mqtt_url=broker.url,
        influx={"url": influx.url, "api": "v1", "database": DATABASE},
    )
    flood: subprocess.Popen[str] | None = None
    events: list[dict[str, Any]] = []
    samples: list[tuple[float, float]] = []
    try:
        gw.start(timeout=60)
        assert gw.proc is not None
        proc = psutil.Process(gw.proc.pid)
        flood = start_flood(broker.port, int(RATE * seconds))
        t0 = time.monotonic()
        log(f"{minutes:g} min at {RATE:,} readings/s from {DEVICES:,} devices; work in {work}")
        broker_at, influx_at = 0.3 * seconds, 0.5 * seconds
        broker_done = influx_stopped = influx_done = False
        next_sample = 0.0
        while flood.poll() is None:
            t = time.monotonic() - t0
            if t >= next_sample:
                samples.append((t, float(proc.memory_info().rss)))
                next_sample += SAMPLE_S
                if len(samples) % 6 == 1:
                    log(f"t={t:5.0f} s rss={samples[-1][1] / 2**20:.1f} MiB")
            if not broker_done and t >= broker_at:
                log("broker: stop")
                broker.stop()
                time.sleep(BROKER_DOWN_S)
                broker.start()
                log("broker: started again")
                events.append({"broker_restart_at_s": round(t), "down_s": BROKER_DOWN_S})
                broker_done = True
            elif not influx_stopped and t >= influx_at:
                log("influxd: stop")
                influx.stop()
                influx_stopped = True
            elif influx_stopped and not influx_done and t >= influx_at + INFLUX_DOWN_S:
                influx.start()
                log("influxd: started again")
                events.append({"influx_outage_at_s": round(influx_at), "down_s": INFLUX_DOWN_S})
                influx_done = True
            time.sleep(0.5)
        if not influx.running:  # a run shorter than the outage
            influx.start()
        out = flood.stdout.read() if flood.stdout else ""
        published = json.loads(out.strip().splitlines()[-1])
        flood_s = time.monotonic() - t0
        log(f"flood done: {published}")
        stored = wait_for("journal", lambda: journaled(gw.db), published["unique"], 60)
        log(f"journal: {stored:,} rows")
        points = wait_for("influxdb", lambda: influx_points(influx), published["unique"], 180)
        log(f"influxdb: {points:,} points")
        samples.append((time.monotonic() - t0, float(proc.memory_info().rss)))
        half = [(x, y) for x, y in samples if x >= flood_s / 2]
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "minutes": minutes,
            "rate_target": RATE,
            "devices": DEVICES,
            "flood": published,
            "rate_achieved": round(published["published"] / flood_s, 1),
            "events": events,
            "unique": published["unique"],
            "journal_stored": stored,
            "influx_stored": points,
            "lost_journal": published["unique"] - stored,
            "lost_influx": published["unique"] - points,
            "rss_first_bytes": samples[0][1],
            "rss_last_bytes": samples[-1][1],
            "rss_max_bytes": max(y for _, y in samples),
            "rss_slope_bytes_per_min": round(slope(samples) * 60),
            "rss_slope_second_half_bytes_per_min": round(slope(half) * 60),
            "rss_samples": [[round(x), int(y)] for x, y in samples],
        }
    finally:
        if flood is not None and flood.poll() is None:
            flood.kill()
            flood.wait()
        gw.stop()
        influx.stop()
        broker.stop()


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    work = Path(tempfile.mkdtemp(prefix="courtyard-soak-"))
    result = soak(minutes, work)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    ok = result["lost_journal"] == 0 and result["lost_influx"] == 0
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log(f"kept {work} for a look (gateway.log, mosquitto.log, influxd.log)")
    log(f"written to {RESULT}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
