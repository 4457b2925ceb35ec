"""The SQLite schema: one file holds the journal, the device state and the dead letters.

The journal keeps one row per accepted message (not one per field): measured here, that is
about three times faster to write than a row per reading, and it is what the sinks replay.
``UNIQUE(device_id, ts_ms, seq)`` makes a redelivered message a no-op (``INSERT OR IGNORE``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Literal

from gateway.store.backup import BackupError, copy_store

Durability = Literal["full", "normal"]
"""``full``: a commit returns only once it is on stable storage (SQLite ``synchronous =
FULL``: the WAL is synced at every commit). ``normal``: the WAL is synced only at checkpoints,
so a power cut or a kernel crash can take the last commits back (a crash of the process
cannot). What is acknowledged to a device, the broker or a caller after a commit is only as
durable as this."""
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

log = logging.getLogger(__name__)

# Message kinds in journal.kind
TELEMETRY, EVENT, STATUS, ACK = 0, 1, 2, 3
KIND_NAMES = {TELEMETRY: "telemetry", EVENT: "event", STATUS: "status", ACK: "ack"}
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

# The numbered migrations: STEPS[n] takes a store from schema version n - 1 to n, in one
# transaction that also sets ``PRAGMA user_version = n``. A released step is history: never
# edit it; a change of layout (a table, a column, an index) is a new step at the end. This is
# the only place the layout is written: the modules that keep tables in the store (audit,
# alerts, tickets, the webhook outbox, the rules engine, revocations) call :func:`migrate` on
# their own connection, which finds the store at the current version and does nothing, or
# makes a standalone store (a unit test's) whole.
#
# Version 1 is the layout of the first release (commit d291f1c): the store's tables and those
# that audit, alerts, tickets, the webhook outbox and the rules engine created in their
# ``open()``. Stores of that release say ``user_version = 1``.
_V1 = """
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

CREATE TABLE IF NOT EXISTS notices (
    id          INTEGER PRIMARY KEY,
    type        TEXT NOT NULL,
    community   TEXT NOT NULL,
    class       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    body        TEXT NOT NULL              -- the webhook body: {"type", "timestamp", "data"}
);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id          INTEGER PRIMARY KEY,
    url         TEXT NOT NULL UNIQUE,
    failing_since_ms INTEGER,
    delivered_total  INTEGER NOT NULL DEFAULT 0,
    failures_total   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id          INTEGER PRIMARY KEY,
    endpoint    INTEGER NOT NULL,
    notice_id   INTEGER NOT NULL,
    msg_id      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS webhook_outbox_endpoint ON webhook_outbox (endpoint, id);

CREATE TABLE IF NOT EXISTS rule_timers (
    device      TEXT NOT NULL,
    key         TEXT NOT NULL,
    deadline_ms INTEGER NOT NULL,          -- wall clock: survives a restart
    data        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (device, key)
);

CREATE TABLE IF NOT EXISTS alerts (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    community   TEXT NOT NULL,
    class       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,             -- active | acknowledged | cleared
    raised_ms   INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    acknowledged_ms INTEGER,
    acknowledged_by TEXT NOT NULL DEFAULT '',
    cleared_ms  INTEGER,
    cleared_reason TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (device, rule) WHERE status != 'cleared';
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, id);

CREATE TABLE IF NOT EXISTS tickets (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    community   TEXT NOT NULL,
    class       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,             -- open | resolved
    opened_ms   INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    occurrences INTEGER NOT NULL DEFAULT 1,
    recovered_ms INTEGER,
    resolved_ms INTEGER,
    resolution  TEXT NOT NULL DEFAULT '',
    alert_id    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_open ON tickets (device, rule) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS audit (
    id             INTEGER PRIMARY KEY,
    ts_ms          INTEGER NOT NULL,
    principal      TEXT NOT NULL,      -- resident sub, platform key name, or the device itself
    principal_kind TEXT NOT NULL,      -- resident | platform | device
    credential     TEXT NOT NULL DEFAULT '',
    community      TEXT NOT NULL DEFAULT '',
    device         TEXT NOT NULL,
    action         TEXT NOT NULL,
    args           TEXT NOT NULL DEFAULT '{}',
    command_id     TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    latency_ms     REAL
);
CREATE INDEX IF NOT EXISTS audit_device ON audit (device, id);
CREATE INDEX IF NOT EXISTS audit_principal ON audit (principal, id);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms);
"""

# Version 2: every run of the gateway, when it started and whether it stopped cleanly (a
# run without ``stopped_ms`` ended in a crash or a power cut: the next start says so); the
# event index, which stores of version 1 written before it existed lack (built here once:
# 0.54 s for 4.8M rows); the audit row's command path; signed-out sessions and revoked
# residents.
_V2 = """
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    stopped_ms  INTEGER,                   -- NULL: running, or it never stopped cleanly
    version     TEXT NOT NULL DEFAULT ''   -- the Courtyard version that ran
);
CREATE INDEX IF NOT EXISTS journal_events ON journal (id) WHERE kind = 1;
-- how a command went: signed, or the adapter it went through (CONTRACT.md 7.4)
ALTER TABLE audit ADD COLUMN path TEXT NOT NULL DEFAULT 'signed';
-- console sessions signed out, residents' tokens revoked (gateway/revocation.py)
CREATE TABLE revoked_sessions (
    sid        TEXT PRIMARY KEY,
    until_ms   INTEGER NOT NULL       -- the session's own expiry: forgotten after it
);
CREATE TABLE revoked_residents (
    community  TEXT NOT NULL,
    sub        TEXT NOT NULL,
    before_ms  INTEGER NOT NULL,      -- tokens issued before this are refused
    at_ms      INTEGER NOT NULL,
    by         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (community, sub)
);
"""

STEPS: dict[int, str] = {1: _V1, 2: _V2}
SCHEMA_VERSION = max(STEPS)


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


class NewerStore(RuntimeError):
    """The store was written by a newer Courtyard: this one must not touch it."""

    def __init__(self, where: str, version: int) -> None:
        super().__init__(
            f"the store {where} has schema version {version}, written by a newer Courtyard;"
            f" this one knows versions up to {SCHEMA_VERSION} and will not touch it: run the"
            " newer version, or restore a backup taken before the upgrade (courtyard restore)"
        )


class UpgradeFailed(RuntimeError):
    """A schema step, or the snapshot before the first one, failed: the store is as it was."""


def user_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def snapshot_path(store: Path, version: int) -> Path:
    """Where the copy taken before an upgrade from ``version`` goes: beside the store, named
    with the version it holds (a second attempt does not overwrite the first one's)."""
    path = store.with_name(f"{store.name}.v{version}.bak")
    if path.exists():
        path = store.with_name(f"{store.name}.v{version}-{time.time_ns() // 1_000_000}.bak")
    return path


def migrate(conn: sqlite3.Connection) -> Path | None:
    """Bring the store to :data:`SCHEMA_VERSION`, one numbered step at a time, each in one
    transaction with its ``user_version``; a store that holds anything is first copied beside
    itself (:func:`snapshot_path`, checked with ``integrity_check``), which is returned. A
    store from a newer Courtyard raises :class:`NewerStore` and is left as it is."""
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise NewerStore(_file(conn) or "in memory", version)
    if version == SCHEMA_VERSION:
        return None
    snapshot: Path | None = None
    file = _file(conn)
    (objects,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if file and objects:
        snapshot = snapshot_path(Path(file), version)
        try:
            copy_store(conn, snapshot)
        except (BackupError, sqlite3.Error, OSError) as exc:  # a full disk, a damaged store
            raise UpgradeFailed(
                f"the store {file} is at schema version {version} and was not upgraded: the copy"
                f" to take before the upgrade failed: {exc}"
            ) from exc
        log.info(
            "store %s: schema version %d, upgrading to %d; the store as it was is in %s",
            file,
            version,
            SCHEMA_VERSION,
            snapshot,
        )
    for step in range(version + 1, SCHEMA_VERSION + 1):
        try:
            # executescript commits whatever is open first, so the transaction is in the script
            script = f"BEGIN IMMEDIATE;\n{STEPS[step]}\nPRAGMA user_version = {step};\nCOMMIT;"
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            kept = f"; the store before the upgrade is in {snapshot}" if snapshot else ""
            raise UpgradeFailed(
                f"schema step {step} failed, the store stays at version {step - 1}: {exc}{kept}"
            ) from exc
    if snapshot is not None:
        log.info("store %s upgraded to schema version %d", file, SCHEMA_VERSION)
    return snapshot


def _file(conn: sqlite3.Connection) -> str:
    """The main database's file ('' in memory or temporary)."""
    for _, name, path in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(path or "")
    return ""
