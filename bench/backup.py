"""What ``courtyard backup`` costs a running gateway: ``courtyard serve`` on a store grown to
``--rows`` journal rows, the flood tool publishing at ``--rate`` msg/s, and the backup taken as a
separate process in the middle. A reader samples the journal's head every 20 ms: the ingest rate
and the longest pause of the head, in the 3 s before, during, and in the 3 s after the backup.

    .venv/bin/python -m bench.backup [--rows 2000000] [--rate 2000]

Prints one JSON object (``backup.*`` figures). Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_stubs.flood import flood
from tests.support.servers import REPO, GatewayProcess, Mosquitto

BODY = '{"energy_kwh": 123.456, "power_w": 1520.5, "voltage_v": 230.1}'


def grow(db: Path, rows: int) -> None:
    """The v1 fixture plus ``rows`` meter readings: an upgrade and a big copy in one."""
    shutil.copyfile(REPO / "tests" / "fixtures" / "store_v1.db", db)
    conn = sqlite3.connect(db)
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO journal (device_id, ts_ms, seq, kind, received_ms, flag, body)"
        " SELECT 3, 1700000000000 + i, i, 0, 1700000000000 + i, '', ? FROM n",
        (rows, BODY),
    )
    conn.commit()
    conn.close()


def run(rows: int, rate: float, work: Path) -> dict[str, Any]:
    broker = Mosquitto(work / "broker")
    broker.start()
    gw = GatewayProcess(work / "gw", mqtt_url=broker.url)
    grow(gw.db, rows)
    gw.start(timeout=300)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        reader = sqlite3.connect(f"{gw.db.resolve().as_uri()}?mode=ro", uri=True)
        while not done.is_set():
            (head,) = reader.execute("SELECT max(id) FROM journal").fetchone()
            samples.append((time.monotonic(), int(head)))
            time.sleep(0.02)
        reader.close()

    load: dict[str, Any] = {}
    messages = int(rate * 20)
    flooder = threading.Thread(
        target=lambda: load.update(
            flood("127.0.0.1", broker.port, 200, messages, rate=rate, engine="raw", timeout_s=120)
        )
    )
    try:
        flooder.start()
        time.sleep(5)
        sampler = threading.Thread(target=sample)
        sampler.start()
        time.sleep(3)
        t0 = time.monotonic()
        config, out_file = str(gw.dir / "courtyard.toml"), str(work / "backup.db")
        out = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "backup", "--config", config, "--out", out_file],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        t1 = time.monotonic()
        time.sleep(3)
        done.set()
        sampler.join()
        flooder.join()
    finally:
        gw.stop()
        broker.stop()

    def window(lo: float, hi: float) -> dict[str, float]:
        pts = [(t, h) for t, h in samples if lo <= t <= hi]
        pause, last_t, last_h = 0.0, pts[0][0], pts[0][1]
        for t, h in pts:
            if h != last_h:
                pause, last_t, last_h = max(pause, t - last_t), t, h
        rows_s = (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])
        return {"rows_per_s": round(rows_s), "longest_pause_s": round(pause, 3)}

    return {
        "backup.store_mib": round(gw.db.stat().st_size / 2**20),
        "backup.seconds_wall": round(t1 - t0, 2),
        "backup.report": out.stdout.strip(),
        "backup.before": window(t0 - 3, t0),
        "backup.during": window(t0, t1),
        "backup.after": window(t1, t1 + 3),
        "backup.flood": load,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--rate", type=float, default=2000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cy-bench-backup-") as tmp:
        print(json.dumps(run(args.rows, args.rate, Path(tmp)), indent=1))


if __name__ == "__main__":
    main()
