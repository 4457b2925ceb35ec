"""The store on a real 24 MiB filesystem, filled to the last byte under 2,000 msg/s: the
gateway stays up and withholds PUBACKs (the broker queues), says so within 5 s (``/readyz``
503 with the reason, ``/healthz`` degraded, the ``store_degraded`` alert, the metrics), and
after space comes back resumes without a restart within 10 s, with nothing lost."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from firmware_stubs.flood import flood
from tests.support.smallfs import fill, small_filesystem
from tests.support.wait import wait_for

RATE = 2000
SECONDS = 25
FULL_FOR_S = 8


def stored(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM journal WHERE kind = 0)"
            ).fetchone()[0]
        )
    finally:
        conn.close()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def store_alerts(gw: Any, status: str) -> list[dict[str, Any]]:
    alerts = gw.get("/api/v1/alerts", status=status).json()["alerts"]
    return [a for a in alerts if a["rule"] == "store_degraded"]


def test_disk_full_under_load(mosquitto, gateway_factory, tmp_path):
    with small_filesystem(tmp_path / "disk", 24 * 2**20) as disk:
        gw = gateway_factory(
            mqtt_url=mosquitto.url,
            store_path=str(disk / "courtyard.db"),
            # no floor: the disk itself runs out (a floor would hold before it does)
            store={"min_free_bytes": 0},
            extra="[rules.store_degraded]\nclear_after_s = 1\n",
        )
        gw.start()
        pid = gw.proc.pid
        total = RATE * SECONDS
        done: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: done.update(
                flood(
                    "127.0.0.1",
                    mosquitto.port,
                    devices=1000,
                    messages=total,
                    rate=RATE,
                    engine="raw",
                    timeout_s=120,
                )
            )
        )
        load.start()
        wait_for(lambda: stored(gw.db) > RATE, timeout=20, what="readings before the fault")
        assert httpx.get(f"{gw.api}/readyz").status_code == 200

        filler = disk / "filler"
        fill(filler)
        full_at = time.monotonic()

        def degraded() -> dict[str, Any] | None:
            r = httpx.get(f"{gw.api}/readyz", timeout=2)
            body: dict[str, Any] = r.json()
            return (
                body if r.status_code == 503 and "disk_full" in body["store"]["reasons"] else None
            )

        body = wait_for(degraded, timeout=5, what="/readyz 503 with disk_full")
        assert isinstance(body, dict) and body["status"] == "degraded"
        wait_for(
            lambda: store_alerts(gw, "active"),
            timeout=max(0.1, full_at + 5 - time.monotonic()),
            what="the store_degraded alert",
        )
        assert time.monotonic() - full_at <= 5.5  # both within 5 s (one poll of slack)
        health = httpx.get(f"{gw.api}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"  # liveness
        metrics = gw.get("/metrics").text
        assert 'courtyard_store_degraded{reason="disk_full"} 1' in metrics
        assert 'courtyard_store_write_failures_total{reason="disk_full"} 0' not in metrics

        held = stored(gw.db)
        time.sleep(FULL_FOR_S)
        assert stored(gw.db) == held  # nothing more committed, so nothing more acknowledged
        assert gw.proc is not None and gw.proc.poll() is None and gw.proc.pid == pid
        assert metric(gw.get("/metrics").text, "courtyard_ingest_pending") > 0  # in memory

        filler.unlink()
        freed_at = time.monotonic()
        wait_for(
            lambda: httpx.get(f"{gw.api}/readyz").status_code == 200,
            timeout=10,
            what="/readyz 200 after space came back",
        )
        wait_for(
            lambda: stored(gw.db) > held,
            timeout=max(0.1, freed_at + 10 - time.monotonic()),
            what="commits again",
        )
        recovered_s = time.monotonic() - freed_at
        assert recovered_s <= 10

        load.join()
        assert done.get("acked") == total, done
        wait_for(lambda: stored(gw.db) >= total, timeout=60, what="every acknowledged reading")
        assert stored(gw.db) == total
        assert gw.proc.poll() is None and gw.proc.pid == pid  # never restarted
        wait_for(lambda: store_alerts(gw, "cleared"), timeout=10, what="the alert cleared")
        assert not store_alerts(gw, "active")
        logs = gw.logs()
        assert logs.count("store degraded (disk_full)") == 1, logs[-3000:]
        assert "Traceback" not in logs, logs[-5000:]
        print(f"recovered {recovered_s:.1f} s after space came back")
        gw.stop()


def test_the_floor_of_free_disk_sheds_meter_readings_and_keeps_every_event(
    mosquitto, gateway_factory, tmp_path, publisher
):
    """No sink: the journal is the readings' only reader, so once the 24 MiB disk is down to
    its floor the oldest readings are downsampled (then dropped); door events never are, and
    every message is acknowledged and stored or accounted for."""
    with small_filesystem(tmp_path / "disk", 24 * 2**20) as disk:
        gw = gateway_factory(
            mqtt_url=mosquitto.url,
            store_path=str(disk / "courtyard.db"),
            store={"min_free_bytes": 14 * 2**20, "downsample_every_s": 60},
            extra="[rules.store_degraded]\nclear_after_s = 1\n",
        )
        gw.start()
        total = RATE * 30
        done: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: done.update(
                flood(
                    "127.0.0.1",
                    mosquitto.port,
                    devices=1000,
                    messages=total,
                    rate=RATE,
                    engine="raw",
                    timeout_s=120,
                )
            )
        )
        load.start()
        doors = 0
        while load.is_alive():
            publisher.publish(
                "community/c1/access/gate-north/event",
                f'{{"seq": {doors}, "event": "door_opened", "method": "card"}}',
            )
            doors += 1
            time.sleep(0.2)
        load.join()
        assert done.get("acked") == total, done

        def count(sql: str) -> int:
            conn = sqlite3.connect(f"file:{gw.db}?mode=ro", uri=True)
            try:
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()

        wait_for(
            lambda: (
                count("SELECT count(*) FROM journal WHERE kind = 1") >= doors
                and metric(gw.get("/metrics").text, "courtyard_ingest_pending") == 0
            ),
            timeout=60,
            what="the backlog committed",
        )
        metrics = gw.get("/metrics").text
        assert metric(metrics, "courtyard_store_holds_total") == 0
        # shedding kept the disk from filling: no commit ever failed
        assert 'courtyard_store_write_failures_total{reason="disk_full"} 0' in metrics
        shed = [
            ln for ln in metrics.splitlines() if ln.startswith("courtyard_store_shed_rows_total")
        ]
        assert any(not ln.endswith(" 0") for ln in shed), shed
        assert store_alerts(gw, "active") or store_alerts(gw, "cleared")
        assert count("SELECT count(*) FROM journal WHERE kind = 1") == doors  # all kept
        assert count("SELECT count(*) FROM journal WHERE flag = 'downsampled'") > 0
        st = os.statvfs(disk)
        assert st.f_bavail * st.f_frsize > 8 * 2**20  # the floor held (less one WAL's worth)
        print(metrics[metrics.index("courtyard_store_used") :].split("# HELP courtyard_comm")[0])
        gw.stop()
