"""The ingest guarantees end to end, against real servers: Mosquitto, influxd, the gateway
process, and the flood generator standing in for 1,000 devices.

- exactly once: every reading lands once in the journal and once in InfluxDB, with 10% of the
  messages published twice;
- InfluxDB down under load: afterwards every reading is there;
- the broker restarted and the gateway killed with -9 under load: every reading the broker
  acknowledged to the devices is stored, exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

from firmware_stubs.flood import flood
from tests.support.influx import InfluxdServer
from tests.support.wait import wait_for

OUTAGE_S = float(os.environ.get("COURTYARD_TEST_OUTAGE_S", "60"))


def journal_telemetry(db_path: Any) -> int:
    db = sqlite3.connect(db_path)
    try:
        return int(db.execute("SELECT count(*) FROM journal WHERE kind = 0").fetchone()[0])
    finally:
        db.close()


def distinct_messages(db_path: Any) -> int:
    db = sqlite3.connect(db_path)
    try:
        return int(
            db.execute(
                "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM journal WHERE kind = 0)"
            ).fetchone()[0]
        )
    finally:
        db.close()


def influx_config(server: InfluxdServer, db: str) -> dict[str, str]:
    server.create_database(db)
    return {"url": server.url, "api": "v1", "database": db}


def test_exactly_once_with_duplicates(mosquitto, gateway_factory, influxd_v1):
    gw = gateway_factory(mqtt_url=mosquitto.url, influx=influx_config(influxd_v1, "once"))
    gw.start()
    result = flood(
        "127.0.0.1",
        mosquitto.port,
        devices=1000,
        messages=100_000,
        duplicate_ratio=0.1,
        engine="raw",
        timeout_s=120,
    )
    assert result["acked"] == result["published"] == 110_000
    assert result["unique"] == 100_000
    wait_for(lambda: journal_telemetry(gw.db) >= 100_000, timeout=120, what="journal")
    time.sleep(0.5)  # let any straggling duplicate arrive before counting
    assert journal_telemetry(gw.db) == 100_000
    assert distinct_messages(gw.db) == 100_000
    wait_for(
        lambda: influxd_v1.count("once", "meter", "power_w") >= 100_000,
        timeout=120,
        what="InfluxDB",
    )
    assert influxd_v1.count("once", "meter", "power_w") == 100_000
    assert len({d["id"] for d in gw.get("/api/v1/devices").json()["devices"]}) == 1000
    metrics = gw.get("/metrics").text
    assert "courtyard_journal_duplicates_total 10000" in metrics


def test_influxdb_outage_under_load_loses_nothing(mosquitto, gateway_factory, tmp_path):
    influx = InfluxdServer(tmp_path / "influxd")
    influx.start()
    try:
        gw = gateway_factory(mqtt_url=mosquitto.url, influx=influx_config(influx, "outage"))
        gw.start()
        total = 40_000
        rate = total / (OUTAGE_S + 10)
        done: dict[str, Any] = {}
        load = threading.Thread(  # a daemon: a failed test must not keep pytest alive
            daemon=True,
            target=lambda: done.update(
                flood(
                    "127.0.0.1",
                    mosquitto.port,
                    devices=1000,
                    messages=total,
                    rate=rate,
                    engine="raw",
                    timeout_s=OUTAGE_S + 120,
                )
            ),
        )
        load.start()
        time.sleep(3)
        influx.stop()
        stopped_at = time.monotonic()
        wait_for(
            lambda: "courtyard_influx_healthy 0.0" in gw.get("/metrics").text,
            timeout=30,
            what="the sink to notice the outage",
        )
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        lag = gw.get("/metrics").text
        assert "courtyard_influx_lag_points 0.0" not in lag  # readings waited in the journal
        influx.start()
        load.join()
        assert done["acked"] == total
        wait_for(
            lambda: influx.count("outage", "meter", "power_w") >= total,
            timeout=120,
            what="every reading in InfluxDB",
        )
        assert influx.count("outage", "meter", "power_w") == total
        assert journal_telemetry(gw.db) == total
        logs = gw.logs()  # the outage is logged once when it starts and once when it ends
        assert logs.count("InfluxDB writes failing") == 1, logs
        assert logs.count("InfluxDB writes recovered") == 1, logs
    finally:
        influx.stop()


def test_broker_restart_and_gateway_kill9_under_load(mosquitto, gateway_factory):
    gw = gateway_factory(mqtt_url=mosquitto.url)
    gw.start()
    total = 60_000
    done: dict[str, Any] = {}
    load = threading.Thread(  # a daemon: a failed test must not keep pytest alive
        daemon=True,
        target=lambda: done.update(
            flood(
                "127.0.0.1",
                mosquitto.port,
                devices=1000,
                messages=total,
                duplicate_ratio=0.05,
                rate=5000,
                engine="paho",
                timeout_s=120,
            )
        ),
    )
    load.start()
    time.sleep(3)
    before = journal_telemetry(gw.db)
    mosquitto.stop()  # a clean stop: the broker saves the sessions and queues
    time.sleep(2)
    mosquitto.start()
    time.sleep(3)
    gw.kill9()
    mid = journal_telemetry(gw.db)
    time.sleep(2)
    gw.start()
    load.join()
    assert done.get("acked") == done.get("published"), done
    wait_for(lambda: journal_telemetry(gw.db) >= total, timeout=120, what="every reading stored")
    time.sleep(1)
    assert 0 < before < mid < total  # the faults really happened under load
    assert journal_telemetry(gw.db) == total
    assert distinct_messages(gw.db) == total
