"""A store that fails its integrity check at start-up is moved aside with its WAL, a fresh one
is started, and the ``store_replaced`` alert says what was wrong and where the old one went."""

from __future__ import annotations

import sqlite3

from tests.support.wait import wait_for


def test_a_corrupt_store_is_moved_aside_and_an_alert_raised(mosquitto, gateway_factory, publisher):
    gw = gateway_factory(mqtt_url=mosquitto.url, store={"startup_check": "integrity"})
    gw.start()
    for i in range(2000):
        payload = f'{{"ts": {1_763_700_000_000 + i}, "seq": {i}, "power_w": {i}}}'
        publisher.publish(f"community/c1/meter/m-{i % 50}/telemetry", payload)
    wait_for(
        lambda: (
            sqlite3.connect(gw.db).execute("SELECT count(*) FROM journal").fetchone()[0] >= 2000
        ),
        what="the readings stored",
    )
    assert gw.stop() == 0
    conn = sqlite3.connect(gw.db)
    try:  # everything into the database file, so that its pages are the live ones
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'journal'"
        ).fetchone()
    finally:
        conn.close()
    with gw.db.open("r+b") as f:  # a torn write: garbage over the journal's root page
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)

    gw.start()
    moved = list(gw.dir.glob("courtyard.db.corrupt-*"))
    assert [p.name for p in moved if "-wal" not in p.name and "-shm" not in p.name], moved
    alerts = gw.get("/api/v1/alerts", status="active").json()["alerts"]
    replaced = [a for a in alerts if a["rule"] == "store_replaced"]
    assert len(replaced) == 1, alerts
    assert "corrupt" in gw.logs() and "moved aside" in gw.logs()
    # the fresh store works: a new reading is stored
    publisher.publish("community/c1/meter/m-1/telemetry", '{"seq": 99999, "power_w": 5}')
    wait_for(
        lambda: sqlite3.connect(gw.db).execute("SELECT count(*) FROM journal").fetchone()[0] >= 1,
        what="a reading in the fresh store",
    )
