"""A store on a read-only filesystem at start-up: the gateway does not exit (which would make a
crash loop of its supervisor's restarts); it waits, says so once, and starts by itself once the
filesystem is writable again."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import GatewayProcess
from tests.support.smallfs import small_filesystem
from tests.support.wait import wait_for


def test_a_read_only_store_is_waited_for_not_a_crash_loop(
    mosquitto, gateway_factory, tmp_path, publisher
):
    with small_filesystem(tmp_path / "disk", 16 * 2**20) as disk:
        (disk / "store").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        gw = gateway_factory(
            mqtt_url=mosquitto.url,
            store_path=str(disk / "store" / "c.db"),
            store={"min_free_bytes": 0},  # a 16 MiB disk is under the default floor
        )
        with pytest.raises(TimeoutError):
            gw.start(timeout=5)
        assert gw.proc is not None and gw.proc.poll() is None  # still running, not exited
        wait_for(
            lambda: "cannot be opened for writing" in gw.logs(), timeout=10, what="the wait logged"
        )
        assert gw.logs().count("cannot be opened for writing") == 1  # once, not per retry
        assert "Traceback" not in gw.logs()

        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        back = time.monotonic()
        wait_for(lambda: _ready(gw), timeout=15, what="the gateway up once writable")
        print(f"up {time.monotonic() - back:.1f} s after the remount")
        publisher.publish("community/c1/meter/m-1/telemetry", '{"seq": 1, "power_w": 5}')
        wait_for(lambda: _count(gw.db) == 1, what="a reading stored")
        assert "recovered from read_only" in gw.logs()
        gw.stop()


def _ready(gw: GatewayProcess) -> bool:
    try:
        r = httpx.get(f"{gw.api}/readyz", timeout=1)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM journal").fetchone()[0])
    finally:
        conn.close()
