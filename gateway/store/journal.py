"""The journal: durable, de-duplicated storage of every accepted message, with group commit.

One :class:`Store` owns the writing connection and lives on the event loop (commits run
inline: measured here, a commit handed to a thread per batch was about three times slower).
With ``durability = "full"`` a commit returns only once it is synced to stable storage; the
rules, alerts, tickets and webhook outbox write on this connection too, so theirs are as well.
Device state (online, last seen, latest values) is kept in memory and written back with the
batch that changed it, so a read of ``/devices`` never touches the journal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern
from typing import Any, Literal

import orjson

from devices.model import Decoded
from gateway.store.schema import KIND_CODES, STATUS, TELEMETRY, Durability, connect, migrate

log = logging.getLogger(__name__)

HEAD_BYTES = 1024
EXPIRE_CHUNK = 5000
"""Row ids per retention transaction. Measured on a journal of 5 million rows from 1,000
meters: 16-19 ms per transaction, where one DELETE by ``received_ms`` held the loop 0.3 s
per 5 million rows just to find them."""


@dataclass(slots=True)
class DeviceState:
    """What the gateway knows of one device; mirrored in the ``devices`` table."""

    id: int
    device: str
    community: str
    device_class: str
    building: str = ""
    registered: bool = False
    online: bool | None = None
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    state_ms: int | None = None
    latest: dict[str, list[Any]] = field(default_factory=dict)  # field -> [value, ts_ms]


# Made once per message and never changed; not ``frozen`` (its __init__ is three times slower).
@dataclass(slots=True)
class DeadLetter:
    received_ms: int
    topic: str
    reason: str
    detail: str
    payload: bytes
    adapter: str = ""  # the adapter that rejected it (CONTRACT.md 7); "" for native topics


@dataclass(slots=True)
class Accepted:
    """A decoded message bound to its device, ready for the journal (never changed)."""

    device: DeviceState
    message: Decoded
    received_ms: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    dead: int
    head: int  # the newest journal row id after the commit


class Store:
    """The SQLite store. ``open()`` before use, ``close()`` after; not thread-safe."""

    def __init__(
        self,
        path: str,
        *,
        now_ms: Callable[[], int] | None = None,
        durability: Durability = "full",
        startup_check: StartupCheck = "quick",
    ) -> None:
        self.path = path
        self.durability = durability
        self.startup_check = startup_check
        self.replaced: tuple[str, str] | None = None
        """(where the store that failed its check at start-up was moved, what was wrong)."""
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._conn: sqlite3.Connection | None = None
        self.devices: dict[str, DeviceState] = {}
        self._discovered: list[DeviceState] = []  # written with the next group commit
        self.applied_head = 0  # the newest journal row folded into the device state
        self._lock = threading.Lock()  # one transaction at a time on the connection
        self._next_device_id = 1
        self.dead_letter_counts: Counter[str] = Counter()
        # the part of dead_letter_counts that adapters rejected, by (reason, adapter); since start
        self.adapter_dead_letter_counts: Counter[tuple[str, str]] = Counter()
        self.duplicates_total = 0
        self.inserted_total = 0
        self.commits_total = 0

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    def open(self) -> None:
        self.replaced = None
        if self.startup_check != "off" and Path(self.path).exists():
            problem = check_integrity(self.path, quick=self.startup_check == "quick")
            if problem is not None:
                moved = move_aside(self.path, self._now_ms())
                self.replaced = (moved, problem)
                log.error(
                    "store %s failed its integrity check (%s): moved aside to %s, starting a "
                    "fresh one",
                    self.path,
                    problem,
                    moved,
                )
        self._conn = connect(self.path, durability=self.durability)
        migrate(self._conn)
        self._load_devices()
        for reason, count in self._conn.execute(
            "SELECT reason, count(*) FROM dead_letters GROUP BY reason"
        ):
            self.dead_letter_counts[reason] = count

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- devices ---------------------------------------------------------------------------

    def _load_devices(self) -> None:
        rows = self.conn.execute(
            "SELECT id, device, community, class, building, registered, online, first_seen_ms,"
            " last_seen_ms, state_ms, latest FROM devices"
        )
        for row in rows:
            st = DeviceState(
                id=row[0],
                device=row[1],
                community=intern(row[2]),  # shared by thousands of devices
                device_class=intern(row[3]),
                building=intern(row[4]),
                registered=bool(row[5]),
                online=None if row[6] is None else bool(row[6]),
                first_seen_ms=row[7],
                last_seen_ms=row[8],
                state_ms=row[9],
                latest=orjson.loads(row[10]),
            )
            self.devices[st.device] = st
            self._next_device_id = max(self._next_device_id, st.id + 1)
        self._replay_state()

    def _replay_state(self) -> None:
        """Bring latest values up to date from journal rows written after the last checkpoint."""
        by_id = {st.id: st for st in self.devices.values()}
        after = self.load_cursor("state")
        last = after
        for row_id, device_id, ts_ms, kind, received_ms, body in self.conn.execute(
            "SELECT id, device_id, ts_ms, kind, received_ms, body FROM journal WHERE id > ?"
            " ORDER BY id",
            (after,),
        ):
            st = by_id.get(device_id)
            last = row_id
            if st is None:
                continue
            _apply(st, kind, ts_ms, received_ms, orjson.loads(body))
        self.applied_head = last
        if last != after:
            self._checkpoint_state(list(self.devices.values()), last)

    def register(self, entries: Iterable[tuple[str, str, str, str]]) -> None:
        """Upsert registry devices: (device, community, class, building)."""
        with self._transaction() as conn:
            for device, community, device_class, building in entries:
                conn.execute(
                    "INSERT INTO devices (device, community, class, building, registered)"
                    " VALUES (?, ?, ?, ?, 1) ON CONFLICT(device) DO UPDATE SET"
                    " community=excluded.community, class=excluded.class,"
                    " building=excluded.building, registered=1",
                    (device, community, device_class, building),
                )
        self.devices.clear()
        self._load_devices()

    def discover(self, device: str, community: str, device_class: str) -> DeviceState:
        """Record a device heard on the wire but absent from the registry (written to the
        store with the group commit that carries its first message)."""
        now = self._now_ms()
        st = DeviceState(
            id=self._next_device_id,
            device=device,
            community=community,
            device_class=device_class,
            first_seen_ms=now,
        )
        self._next_device_id += 1
        self.devices[device] = st
        self._discovered.append(st)
        return st

    # -- writing ---------------------------------------------------------------------------

    def write(self, accepted: list[Accepted], dead: list[DeadLetter]) -> WriteResult:
        """Commit and apply in one go (the synchronous form of :meth:`commit` + :meth:`apply`)."""
        discovered = self.take_discovered()
        try:
            result = self.commit(accepted, dead, discovered)
        except BaseException:
            self.give_back_discovered(discovered)
            raise
        self.apply(accepted, result)
        return result

    def take_discovered(self) -> list[DeviceState]:
        """The devices discovered since the last call: they go with the next commit."""
        taken, self._discovered = self._discovered, []
        return taken

    def give_back_discovered(self, devices: list[DeviceState]) -> None:
        """A commit that failed: its discovered devices go with the next one."""
        self._discovered[:0] = devices

    def commit(
        self, accepted: list[Accepted], dead: list[DeadLetter], discovered: list[DeviceState]
    ) -> WriteResult:
        """Write one group commit: every accepted message, every dead letter and the newly
        discovered devices, atomically. It touches no in-memory device state (that is
        :meth:`apply`, once the commit succeeded)."""
        rows = []
        dumps = orjson.dumps
        for item in accepted:
            m = item.message
            kind = KIND_CODES[m.kind]
            if kind == TELEMETRY:
                body: Any = m.fields
            elif kind == STATUS:
                body = {"state": m.status}
            elif m.event is not None:
                body = {"event": m.event, **m.attrs}
            else:
                body = m.attrs
            rows.append(
                (
                    item.device.id,
                    m.ts_ms,
                    -1 if m.seq is None else m.seq,
                    kind,
                    item.received_ms,
                    m.ts_flag,
                    dumps(body).decode(),
                )
            )
        conn = self.conn
        with self._transaction():
            if discovered:
                conn.executemany(
                    "INSERT INTO devices (id, device, community, class, registered,"
                    " first_seen_ms) VALUES (?, ?, ?, ?, 0, ?)",
                    [
                        (s.id, s.device, s.community, s.device_class, s.first_seen_ms)
                        for s in discovered
                    ],
                )
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO journal (device_id, ts_ms, seq, kind, received_ms, flag,"
                " body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            inserted = conn.total_changes - before
            if dead:
                conn.executemany(
                    "INSERT INTO dead_letters (received_ms, topic, reason, detail, size, head)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            d.received_ms,
                            d.topic,
                            d.reason,
                            (f"[{d.adapter}] {d.detail}" if d.adapter else d.detail)[:500],
                            len(d.payload),
                            d.payload[:HEAD_BYTES],
                        )
                        for d in dead
                    ],
                )
            (head,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        for d in dead:
            self.dead_letter_counts[d.reason] += 1
            if d.adapter:
                self.adapter_dead_letter_counts[(d.reason, d.adapter)] += 1
        self.commits_total += 1
        self.inserted_total += inserted
        self.duplicates_total += len(rows) - inserted
        return WriteResult(inserted, len(rows) - inserted, len(dead), head)

    def apply(self, accepted: list[Accepted], result: WriteResult) -> None:
        """Fold a committed batch into the in-memory device state (on the event loop, where
        the API reads it)."""
        for item in accepted:
            m = item.message
            body = m.fields if m.kind == "telemetry" else {"state": m.status}
            _apply(item.device, KIND_CODES[m.kind], m.ts_ms, item.received_ms, body)
        self.applied_head = max(self.applied_head, result.head)

    def checkpoint_state(self) -> None:
        """Write every device's in-memory state back, and remember up to which journal row it
        holds (rows committed but not applied yet are replayed after a crash)."""
        self._checkpoint_state(list(self.devices.values()), self.applied_head)

    def _checkpoint_state(self, states: list[DeviceState], position: int) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE devices SET online=?, first_seen_ms=?, last_seen_ms=?, state_ms=?,"
                " latest=? WHERE id=?",
                [
                    (
                        None if s.online is None else int(s.online),
                        s.first_seen_ms,
                        s.last_seen_ms,
                        s.state_ms,
                        orjson.dumps(s.latest).decode(),
                        s.id,
                    )
                    for s in states
                ],
            )
            self._save_cursor(conn, "state", position)

    def mark_offline(self, state: DeviceState, at_ms: int) -> None:
        """Liveness decided by the gateway (silence), not reported by the device."""
        state.online = False
        state.state_ms = at_ms

    def expire(self, before_ms: int, *, keep_after_id: int | None = None) -> int:
        """Delete journal rows and dead letters received before ``before_ms`` in one go (see
        :meth:`expire_steps`); the number of journal rows deleted."""
        return sum(
            journal for journal, _ in self.expire_steps(before_ms, keep_after_id=keep_after_id)
        )

    def expire_steps(
        self, before_ms: int, *, keep_after_id: int | None = None, chunk: int = EXPIRE_CHUNK
    ) -> Iterator[tuple[int, int]]:
        """Delete journal rows received before ``before_ms``, in transactions of at most
        ``chunk`` row ids, yielding (journal rows, dead letters) deleted by each, so that a
        caller on the event loop lets other work run in between. Never rows a sink has not
        sent yet (those with an id above ``keep_after_id``), and never the newest row, so that
        row ids (the sinks' cursors) never restart from 1. Then the same for dead letters.

        Rows are found by id, not by a scan of ``received_ms`` (which has no index): ids
        follow receive order, so a binary search over ids finds where the old rows end, and
        each delete is a range of the primary key. ``received_ms < before_ms`` still guards
        every delete: a row stamped later than its id suggests (a clock stepped back) is
        never deleted early; it goes on a later pass."""
        conn = self.conn
        lo, newest = _id_bounds(conn, "journal")
        end = min(_first_received_at(conn, "journal", before_ms, lo, newest), newest)
        if keep_after_id is not None:
            end = min(end, keep_after_id + 1)
        for deleted in self._expire_range("journal", before_ms, lo, end, chunk):
            yield deleted, 0
        lo, newest = _id_bounds(conn, "dead_letters")
        end = _first_received_at(conn, "dead_letters", before_ms, lo, newest)
        for deleted in self._expire_range("dead_letters", before_ms, lo, end, chunk):
            yield 0, deleted

    def _expire_range(
        self, table: str, before_ms: int, start: int, end: int, chunk: int
    ) -> Iterator[int]:
        """Rows of ids in [start, end) received before ``before_ms`` go, ``chunk`` ids per
        transaction; yields how many each deleted."""
        while start < end:
            stop = min(start + chunk, end)
            with self._transaction() as conn:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE id >= ? AND id < ? AND received_ms < ?",  # noqa: S608
                    (start, stop, before_ms),
                )
            yield cur.rowcount
            start = stop

    # -- cursors ---------------------------------------------------------------------------

    def load_cursor(self, name: str) -> int:
        row = self.conn.execute("SELECT position FROM cursors WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _save_cursor(self, conn: sqlite3.Connection, name: str, position: int) -> None:
        conn.execute(
            "INSERT INTO cursors (name, position, updated_ms) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET position=excluded.position,"
            " updated_ms=excluded.updated_ms",
            (name, position, self._now_ms()),
        )

    def _transaction(self) -> _Tx:
        return _Tx(self.conn, self._lock)

    def transaction(self) -> _Tx:
        """One write transaction on the store's connection (``with store.transaction():``)."""
        return _Tx(self.conn, self._lock)


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``) on an autocommit connection, one
    at a time on the connection, whichever thread asks."""

    __slots__ = ("conn", "lock")

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if not exc_type:
                self.conn.execute("COMMIT")
            elif self.conn.in_transaction:  # SQLITE_FULL and I/O errors roll back on their own
                self.conn.execute("ROLLBACK")
        finally:
            self.lock.release()


StartupCheck = Literal["integrity", "quick", "off"]


def check_integrity(path: str, *, quick: bool) -> str | None:
    """What ``PRAGMA integrity_check`` (or ``quick_check``, which skips checking the indexes
    against the table) finds wrong with the store at ``path``; None when it is sound."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            rows = conn.execute(
                "PRAGMA quick_check(5)" if quick else "PRAGMA integrity_check(5)"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # not a database at all, a torn header
        return str(exc)
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found)[:500]


def move_aside(path: str, now_ms: int) -> str:
    """Rename the store and its WAL and shared-memory files to ``PATH.corrupt-<ms>``; the new
    name of the store."""
    target = f"{path}.corrupt-{now_ms}"
    for suffix in ("", "-wal", "-shm"):
        source = Path(path + suffix)
        if source.exists():
            source.replace(target + suffix)
    return target


def _apply(st: DeviceState, kind: int, ts_ms: int, received_ms: int, body: dict[str, Any]) -> None:
    """Fold one journal row into a device's state."""
    if st.first_seen_ms is None:
        st.first_seen_ms = received_ms
    if st.last_seen_ms is None or received_ms > st.last_seen_ms:
        st.last_seen_ms = received_ms
    if kind == STATUS:
        online = body.get("state") == "online"
        if st.online is not online:
            st.online = online
            st.state_ms = received_ms
        return
    if st.online is not True:
        st.online = True
        st.state_ms = received_ms
    if kind == TELEMETRY:
        latest = st.latest
        for name, value in body.items():
            prev = latest.get(name)
            if prev is None or ts_ms >= prev[1]:
                latest[name] = [value, ts_ms]


def _id_bounds(conn: sqlite3.Connection, table: str) -> tuple[int, int]:
    """(oldest id, newest id) of ``table``; (1, 0) when it is empty. Two queries: min() and
    max() in one statement make SQLite scan the whole table."""
    (lo,) = conn.execute(f"SELECT coalesce(min(id), 1) FROM {table}").fetchone()  # noqa: S608
    (hi,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()  # noqa: S608
    return int(lo), int(hi)


def _first_received_at(conn: sqlite3.Connection, table: str, at_ms: int, lo: int, hi: int) -> int:
    """The id from which rows of ``table`` (ids ``lo`` to ``hi``) were received at or after
    ``at_ms`` (``hi + 1`` when none was), by binary search over ids: about 30 primary-key
    lookups for a billion rows. Exact when ``received_ms`` never decreases along the ids."""
    probe = f"SELECT id, received_ms FROM {table} WHERE id >= ? ORDER BY id LIMIT 1"  # noqa: S608
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        row_id, received_ms = conn.execute(probe, (mid,)).fetchone()
        if received_ms < at_ms:
            lo = row_id + 1
        else:
            hi = mid
    return lo
