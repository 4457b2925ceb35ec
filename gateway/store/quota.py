"""The journal's disk quota: what may be shed, in which order, and how.

Only meter telemetry is ever shed, and only rows that every reader of the journal already has:
the sinks (InfluxDB), the rules and the device-state checkpoint (their cursors), and never the
newest row (its id is what the cursors count from). Alarms, door and access events, statuses,
command acks, audit rows, alerts and the webhook outbox are never touched.

1. **Downsample**: the oldest raw meter readings are replaced, per device and per
   ``every_ms`` bucket of their timestamps, by one row holding each field's mean (gauges) or
   last value (counters, booleans). The row kept is the bucket's latest reading, so its id,
   ``ts_ms`` and ``seq`` stay what they were (no cursor is passed, no key collides), and a
   counter keeps its exact value at that time. Its ``flag`` says ``downsampled``.
2. **Drop**: once no raw reading is left to downsample, the oldest meter readings (by then
   downsampled) are deleted.

Rows go oldest first, ``chunk`` row ids per transaction, so that the event loop runs between
transactions; a bucket cut by a chunk's edge keeps one row on each side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import orjson

from devices.profile import Profile
from devices.profiles import PROFILES
from gateway.store.schema import TELEMETRY

DOWNSAMPLED = "downsampled"
SHED_CLASSES = ("meter",)
CHUNK = 2000
"""Rows per shedding transaction, which holds the event loop. Measured on a journal of a million
readings from 1,000 meters (durability full): 47-88 ms to downsample 5,000, 35-50 ms to drop
5,000, and ~4.5 MiB of WAL per 5,000 downsampled (the unique index is ordered by device, so the
rows of one stretch of time dirty pages all over it)."""

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


def shed_limit(conn: sqlite3.Connection, cursors: Iterable[str]) -> int:
    """The newest row id that may be shed: at or behind every named cursor (a cursor not saved
    yet counts as 0: nothing is behind it) and older than the journal's newest row."""
    (head,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
    limit = int(head) - 1
    for name in cursors:
        row = conn.execute("SELECT position FROM cursors WHERE name=?", (name,)).fetchone()
        limit = min(limit, int(row[0]) if row else 0)
    return max(limit, 0)


_SHED_DEVICES = "SELECT id FROM devices WHERE class IN ({})".format(  # noqa: S608
    ",".join(f"'{c}'" for c in SHED_CLASSES)  # constants
)


def downsample_chunk(
    conn: sqlite3.Connection,
    transaction: Transaction,
    *,
    limit_id: int,
    every_ms: int,
    after_id: int = 0,
    chunk: int = CHUNK,
) -> tuple[int, int]:
    """Downsample the oldest ``chunk`` raw meter readings with ids in (``after_id``,
    ``limit_id``]: (the last id read, rows removed); (0, 0) when nothing raw is left."""
    with transaction():
        rows = conn.execute(
            # the journal walked by id (CROSS JOIN keeps it the outer loop, ``+`` keeps SQLite
            # off the per-device index): else it read every device's rows, then sorted them
            "SELECT j.id, j.device_id, j.ts_ms, j.seq, j.body, d.class FROM journal j"  # noqa: S608
            " CROSS JOIN devices d ON d.id = j.device_id"
            f" WHERE j.id > ? AND j.id <= ? AND j.kind = {TELEMETRY} AND j.flag != '{DOWNSAMPLED}'"
            f" AND +j.device_id IN ({_SHED_DEVICES}) ORDER BY j.id LIMIT ?",
            (after_id, limit_id, chunk),
        ).fetchall()
        if not rows:
            return 0, 0
        groups: dict[tuple[int, int], list[tuple[int, int, int, dict[str, Any]]]] = {}
        classes: dict[int, str] = {}
        for row_id, device_id, ts_ms, seq, body, device_class in rows:
            classes[device_id] = device_class
            groups.setdefault((device_id, ts_ms // every_ms), []).append(
                (ts_ms, seq, row_id, orjson.loads(body))
            )
        updates: list[tuple[str, int]] = []
        deletes: list[tuple[int]] = []
        for (device_id, _), group in groups.items():
            group.sort(key=lambda g: (g[0], g[1]))
            keep = group[-1][2]
            body = _aggregate([g[3] for g in group], PROFILES.get(classes[device_id]))
            updates.append((orjson.dumps(body).decode(), keep))
            deletes += [(g[2],) for g in group[:-1]]
        conn.executemany(
            f"UPDATE journal SET body = ?, flag = '{DOWNSAMPLED}' WHERE id = ?",  # noqa: S608
            updates,
        )
        conn.executemany("DELETE FROM journal WHERE id = ?", deletes)
    return int(rows[-1][0]), len(deletes)


def drop_chunk(
    conn: sqlite3.Connection, transaction: Transaction, *, limit_id: int, chunk: int = CHUNK
) -> int:
    """Delete the oldest ``chunk`` meter readings at or behind ``limit_id``; rows deleted."""
    with transaction():
        cur = conn.execute(
            "DELETE FROM journal WHERE id IN (SELECT id FROM journal"  # noqa: S608
            f" WHERE id <= ? AND kind = {TELEMETRY} AND +device_id IN ({_SHED_DEVICES})"
            " ORDER BY id LIMIT ?)",
            (limit_id, chunk),
        )
        return int(cur.rowcount)


def _aggregate(bodies: list[dict[str, Any]], profile: Profile | None) -> dict[str, Any]:
    """One body for a bucket of readings (oldest first): per field, the mean of a gauge, the
    last value of a counter or a boolean. A field present in only some readings counts those."""
    values: dict[str, list[Any]] = {}
    for body in bodies:
        for name, value in body.items():
            values.setdefault(name, []).append(value)
    out: dict[str, Any] = {}
    for name, seen in values.items():
        last = seen[-1]
        counter = profile is not None and profile.kind(name) == "counter"
        numbers = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
        if counter or isinstance(last, bool) or len(numbers) != len(seen):
            out[name] = last
        else:
            out[name] = sum(numbers) / len(numbers)
    return out
