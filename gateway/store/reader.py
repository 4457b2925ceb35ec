"""Read access to the journal for the sinks, each on its own connection and thread.

A sink reads telemetry after its durable cursor, forwards it, then saves the cursor: the
journal is the truth, the cursor is the only state a sink keeps.
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from gateway.store.schema import TELEMETRY, connect


class TelemetryRow(NamedTuple):
    id: int
    device: str
    community: str
    building: str
    device_class: str
    ts_ms: int
    body: str  # JSON object {field: number | bool}


class RawRow(NamedTuple):
    """A telemetry row as stored: the sink turns it into a point with a per-device cache."""

    id: int
    device_id: int
    ts_ms: int
    body: str  # JSON object {field: number | bool}, as the ingest wrote it


class JournalReader:
    """One sink's view of the journal. Create it in the thread that uses it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            # Its commits (a cursor, a dead letter) acknowledge nothing to anyone: after a power
            # cut the cursor may step back, and the points after it go out again (InfluxDB
            # keeps one point per series and time). Not syncing them spares the sink a sync per
            # batch; the journal's own commits are synced as ``[store] durability`` says.
            self._conn = connect(self.path, durability="normal")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def read_telemetry(self, after_id: int, limit: int) -> list[TelemetryRow]:
        """Up to ``limit`` telemetry rows with ``id > after_id``, oldest first."""
        rows = self.conn.execute(
            "SELECT j.id, d.device, d.community, d.building, d.class, j.ts_ms, j.body"
            " FROM journal j JOIN devices d ON d.id = j.device_id"
            " WHERE j.id > ? AND j.kind = ? ORDER BY j.id LIMIT ?",
            (after_id, TELEMETRY, limit),
        ).fetchall()
        return [TelemetryRow(*r) for r in rows]

    def read_raw(self, after_id: int, limit: int) -> list[RawRow]:
        """Like :meth:`read_telemetry`, without the device columns (no join: the sink keeps
        what it needs of each device)."""
        rows = self.conn.execute(
            "SELECT id, device_id, ts_ms, body FROM journal WHERE id > ? AND kind = ?"
            " ORDER BY id LIMIT ?",
            (after_id, TELEMETRY, limit),
        ).fetchall()
        return [RawRow(*r) for r in rows]

    def device(self, device_id: int) -> tuple[str, str, str, str] | None:
        """(device, community, building, class) of a device row."""
        row = self.conn.execute(
            "SELECT device, community, building, class FROM devices WHERE id = ?", (device_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def read_telemetry_ids(self, ids: list[int]) -> list[TelemetryRow]:
        """The telemetry rows with these ids, oldest first."""
        out: list[TelemetryRow] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out += [
                TelemetryRow(*r)
                for r in self.conn.execute(
                    "SELECT j.id, d.device, d.community, d.building, d.class, j.ts_ms, j.body"  # noqa: S608
                    " FROM journal j JOIN devices d ON d.id = j.device_id"
                    f" WHERE j.id IN ({','.join('?' * len(chunk))}) ORDER BY j.id",
                    chunk,
                )
            ]
        return out

    def head(self) -> int:
        """The newest journal row id (0 when the journal is empty)."""
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        return int(row[0])

    def oldest_after(self, after_id: int) -> int | None:
        """Receive time (epoch ms) of the oldest telemetry row not yet forwarded, if any."""
        row = self.conn.execute(
            "SELECT received_ms FROM journal WHERE id > ? AND kind = ? ORDER BY id LIMIT 1",
            (after_id, TELEMETRY),
        ).fetchone()
        return None if row is None else int(row[0])

    def load_cursor(self, name: str) -> int:
        row = self.conn.execute("SELECT position FROM cursors WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def save_cursor(self, name: str, position: int) -> None:
        self.conn.execute(
            "INSERT INTO cursors (name, position, updated_ms) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET position=excluded.position,"
            " updated_ms=excluded.updated_ms",
            (name, position, int(time.time() * 1000)),
        )

    def dead_letter(self, topic: str, reason: str, detail: str, payload: bytes) -> None:
        """Record a point the sink could not forward (e.g. rejected by the server as malformed)."""
        self.conn.execute(
            "INSERT INTO dead_letters (received_ms, topic, reason, detail, size, head)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (int(time.time() * 1000), topic, reason, detail[:500], len(payload), payload[:1024]),
        )
