"""Numbered store migrations: a store written by the first release (schema version 1, the
fixture tests/fixtures/store_v1.db) is upgraded with nothing lost and a snapshot beside it; a
fresh store ends with the same layout; a newer store is refused untouched."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.revocation import Revocations
from gateway.store.backup import check_file
from gateway.store.journal import Store
from gateway.store.schema import (
    SCHEMA_VERSION,
    STEPS,
    NewerStore,
    UpgradeFailed,
    connect,
    migrate,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "store_v1.db"
V1_TABLES = [
    "devices",
    "journal",
    "dead_letters",
    "cursors",
    "notices",
    "webhook_endpoints",
    "webhook_outbox",
    "rule_timers",
    "alerts",
    "tickets",
    "audit",
]


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in V1_TABLES}
    finally:
        conn.close()


def layout(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    path = tmp_path / "courtyard.db"
    shutil.copyfile(FIXTURE, path)
    return path


def test_the_fixture_is_a_version_1_store_with_data() -> None:
    version, head = check_file(FIXTURE)
    assert version == 1
    assert head >= 300
    counts = {t: len(r) for t, r in rows(FIXTURE).items()}
    assert all(counts[t] > 0 for t in V1_TABLES), counts


def test_upgrade_from_version_1_loses_nothing_and_keeps_a_snapshot(
    v1_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = rows(v1_store)
    store = Store(str(v1_store))
    caplog.set_level("INFO", logger="gateway.store.schema")
    store.open()
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert len(store.devices) == len(before["devices"])
        assert store.devices["meter-1"].latest["energy_kwh"][0] == pytest.approx(147.0)
        assert store.devices["ghost-9"].online is True
        store.conn.execute("SELECT id, started_ms, stopped_ms, version FROM runs").fetchall()
    finally:
        store.close()
    after = rows(v1_store)
    # every row kept; audit rows gain the command path, ``signed`` (the only one in version 1)
    assert after["audit"] == [(*row, "signed") for row in before["audit"]]
    assert {t: r for t, r in after.items() if t != "audit"} == {
        t: r for t, r in before.items() if t != "audit"
    }
    snapshot = v1_store.with_name("courtyard.db.v1.bak")
    assert check_file(snapshot)[0] == 1
    assert rows(snapshot) == before
    assert str(snapshot) in caplog.text
    assert f"upgraded to schema version {SCHEMA_VERSION}" in caplog.text
    # a second start finds the store current: no second snapshot
    Store(str(v1_store)).open()
    assert sorted(p.name for p in v1_store.parent.glob("*.bak")) == ["courtyard.db.v1.bak"]


def test_an_upgraded_store_and_a_fresh_one_have_the_same_layout(
    v1_store: Path, tmp_path: Path
) -> None:
    Store(str(v1_store)).open()
    fresh = tmp_path / "fresh.db"
    conn = connect(str(fresh))
    assert migrate(conn) is None  # nothing in it: no snapshot
    conn.close()
    assert layout(fresh) == layout(v1_store)
    # the modules that keep tables in the store open it through the same steps: opening
    # them adds nothing that an upgraded store would lack
    log = AuditLog(str(fresh))
    log.open()
    log.close()
    revocations = Revocations(str(fresh))
    revocations.open()
    revocations.close()
    assert layout(fresh) == layout(v1_store)
    assert {"path"} <= {
        row[1] for row in sqlite3.connect(v1_store).execute("PRAGMA table_info(audit)")
    }
    assert not list(tmp_path.glob("fresh.db.*.bak"))


def test_every_version_up_to_the_current_one_is_a_step() -> None:
    assert sorted(STEPS) == list(range(1, SCHEMA_VERSION + 1))


def test_a_store_from_a_newer_version_is_refused_untouched(v1_store: Path) -> None:
    conn = sqlite3.connect(v1_store)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = rows(v1_store)
    with pytest.raises(
        NewerStore, match=f"schema version {SCHEMA_VERSION + 1}, written by a newer Courtyard"
    ):
        Store(str(v1_store)).open()
    assert rows(v1_store) == before
    assert check_file(v1_store)[0] == SCHEMA_VERSION + 1
    assert not list(v1_store.parent.glob("*.bak"))


def test_a_damaged_store_is_not_upgraded(v1_store: Path) -> None:
    data = bytearray(v1_store.read_bytes())
    data[3 * 4096 : 5 * 4096] = b"\xa5" * (2 * 4096)  # two pages of the b-trees overwritten
    v1_store.write_bytes(bytes(data))
    with pytest.raises(UpgradeFailed, match="at schema version 1 and was not upgraded"):
        Store(str(v1_store), startup_check="off").open()
    assert sqlite3.connect(v1_store).execute("PRAGMA user_version").fetchone()[0] == 1
    assert not list(v1_store.parent.glob("*.bak"))  # no copy that fails its check
    # with the start-up check (the default), a damaged store is moved aside, never migrated,
    # and a fresh one started (the gateway raises store_replaced)
    store = Store(str(v1_store))
    store.open()
    assert store.replaced is not None
    moved = Path(store.replaced[0])
    store.close()
    assert moved.exists() and moved != v1_store
    assert not list(v1_store.parent.glob("*.bak"))
