"""The WAL checkpoint keeps the write-ahead log from growing without end."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from gateway.store.schema import connect, wal_bytes, wal_checkpoint

ROW = "x" * 2000


def _grow(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(ROW,)] * rows)
    conn.execute("COMMIT")


def test_a_large_wal_is_copied_back_and_emptied(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with closing(connect(path)) as writer:
        writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        _grow(writer, 500)
        assert wal_bytes(path) > 500_000
        # small: a PASSIVE checkpoint only copies the pages back, the file stays
        wal_checkpoint(path, reset_above=100 * 2**20)
        assert wal_bytes(path) > 500_000
        busy, _, _ = wal_checkpoint(path, reset_above=64 * 1024)
        assert busy == 0 and wal_bytes(path) == 0
        _grow(writer, 10)  # the writer goes on from an empty log
        assert 0 < wal_bytes(path) < 100_000
        (count,) = writer.execute("SELECT count(*) FROM t").fetchone()
        assert count == 510


def test_a_reader_on_the_wal_makes_the_reset_wait_briefly_then_give_up(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with closing(connect(path)) as writer, closing(connect(path, readonly=True)) as reader:
        writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        _grow(writer, 300)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot that uses the WAL
        _grow(writer, 300)
        t0 = time.monotonic()
        busy, _, _ = wal_checkpoint(path, reset_above=64 * 1024)
        assert busy == 1 and time.monotonic() - t0 < 2.0
        assert wal_bytes(path) > 0
        reader.execute("COMMIT")
        busy, _, _ = wal_checkpoint(path, reset_above=64 * 1024)
        assert busy == 0 and wal_bytes(path) == 0


def test_a_new_store_is_private_to_its_owner(tmp_path):
    """The store holds the audit trail and webhook URLs with their tokens: 0600, in a 0700
    folder when the gateway creates it (issue 13, finding 18)."""
    import os
    import stat

    from gateway.store.journal import Store

    path = tmp_path / "new" / "courtyard.db"
    old = os.umask(0o022)  # a typical umask would have made it world-readable
    try:
        store = Store(str(path))
        store.open()
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for extra in ("-wal", "-shm"):
        side = path.with_name(path.name + extra)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0
