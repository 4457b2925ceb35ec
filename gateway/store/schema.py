"""The SQLite schema: one file holds the journal, the device state and the dead letters.

The journal keeps one row per accepted message (not one per field): measured here, that is
about three times faster to write than a row per reading, and it is what the sinks replay.
``UNIQUE(device_id, ts_ms, seq)`` makes a redelivered message a no-op (``INSERT OR IGNORE``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Literal

Durability = Literal["full", "normal"]
"""``full``: a commit returns only once it is on stable storage (SQLite ``synchronous =
FULL``: the WAL is synced at every commit). ``normal``: the WAL is synced only at checkpoints,
so a power cut or a kernel crash can take the last commits back (a crash of the process
cannot). What is acknowledged to a device, the broker or a caller after a commit is only as
durable as this."""
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

# Message kinds in journal.kind
TELEMETRY, EVENT, STATUS, ACK = 0, 1, 2, 3
KIND_NAMES = {TELEMETRY: "telemetry", EVENT: "event", STATUS: "status", ACK: "ack"}
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS devices (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL UNIQUE,
    community   TEXT NOT NULL,
    class       TEXT NOT NULL,
    building    TEXT NOT NULL DEFAULT '',
    registered  INTEGER NOT NULL DEFAULT 0,   -- 0: discovered on the wire, 1: in the registry
    online      INTEGER,                       -- NULL: never heard of
    first_seen_ms INTEGER,
    last_seen_ms  INTEGER,
    state_ms    INTEGER,                       -- when online last changed
    latest      TEXT NOT NULL DEFAULT '{}'     -- {field: [value, ts_ms]}
);

CREATE TABLE IF NOT EXISTS journal (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,              -- -1 when the device sent none
    kind        INTEGER NOT NULL,              -- 0 telemetry, 1 event, 2 status, 3 ack
    received_ms INTEGER NOT NULL,
    flag        TEXT NOT NULL DEFAULT '',      -- why ts_ms is the receive time, if it is
    body        TEXT NOT NULL,                 -- JSON: fields / {event, attrs} / {state} / ack
    UNIQUE (device_id, ts_ms, seq, kind)
);
-- Device events only (kind 1): the live stream and /events find them without stepping over the
-- readings in between (a reading pays ~0.1 us to be checked against the WHERE). Queries must
-- say `kind = 1` literally, or SQLite cannot use it.
CREATE INDEX IF NOT EXISTS journal_events ON journal (id) WHERE kind = 1;

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    size        INTEGER NOT NULL,
    head        BLOB NOT NULL                  -- the first KiB of the payload
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason);

CREATE TABLE IF NOT EXISTS cursors (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
"""


def create_private(path: str) -> None:
    """Create the store file for its owner alone (0600: it holds the audit trail and webhook
    URLs with their tokens) unless it exists; SQLite gives its -wal and -shm files the same
    mode. Its folder, when created here, is 0700."""
    if path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if not file.parent.exists():
        file.parent.mkdir(mode=0o700, parents=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def connect(
    path: str, *, readonly: bool = False, durability: Durability = "full"
) -> sqlite3.Connection:
    """Open the store with the pragmas every connection needs (WAL, no automatic checkpoint)
    and the ``durability`` of its commits (see :data:`Durability`); a connection that writes
    nothing anyone is told about may pass ``normal``."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        create_private(path)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[durability]}")
        # No checkpoint inside a commit on the event loop (measured: a 150-600 ms stall every
        # few seconds at 5k msg/s): the gateway runs wal_checkpoint() in a thread instead.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


WAL_RESET_BYTES = 64 * 2**20
WAL_RESET_WAIT_MS = 100


def wal_bytes(path: str) -> int:
    """The size of the store's WAL file (0 when there is none)."""
    try:
        return Path(path + "-wal").stat().st_size
    except OSError:
        return 0


def wal_checkpoint(path: str, *, reset_above: int = WAL_RESET_BYTES) -> tuple[int, int, int]:
    """Copy the WAL back into the database on a connection of its own. Blocking I/O: call
    it off the event loop.

    PASSIVE first: it never blocks a writer, but with a commit every few milliseconds it
    never catches up with the end of the WAL either, and SQLite starts the WAL file over only
    once all of it is copied: measured, the file grew by 2 GB in 5 minutes at 2,000
    readings/s. So once the file is past ``reset_above`` bytes, a TRUNCATE checkpoint
    follows: it holds off the next commit while it copies the little that PASSIVE left and
    empties the file, and gives up (to try again next time) after ``WAL_RESET_WAIT_MS`` if a
    reader is still on the WAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {WAL_RESET_WAIT_MS}")
        busy, log_pages, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if wal_bytes(path) > reset_above:
            busy, log_pages, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(busy), int(log_pages), int(done)
    finally:
        conn.close()


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema in place."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the store was written by a newer Courtyard (schema {version} > {SCHEMA_VERSION})"
        )
    conn.executescript(DDL)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
