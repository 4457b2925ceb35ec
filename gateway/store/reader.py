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


class LineRow(NamedTuple):
    """A telemetry row as an InfluxDB line-protocol point, built by SQLite itself."""

    id: int
    device: str
    line: str | None  # None where SQLite cannot build it safely: encode that row in Python


# Line protocol straight from the stored body, for rows whose names need no escaping (ids are
# [a-z0-9_-], field names [a-z][a-z0-9_]: the decoder enforces both) and whose body holds only
# numbers and booleans: {"a":1.5,"b":true} is a=1.5,b=true. The numbers keep the exact text
# the ingest wrote (shortest round trip; a number without "i" is a float in line protocol).
# Built in SQLite's C code, which runs without the GIL: the sink thread leaves the interpreter
# to the ingest. Tags in sorted order, the empty building left out.
_LINE_SQL = """
SELECT j.id, d.device,
  CASE WHEN d.class NOT GLOB '*[^a-z0-9_]*' AND d.class GLOB '[a-z]*'
        AND d.community NOT GLOB '*[^a-z0-9_-]*' AND d.device NOT GLOB '*[^a-z0-9_-]*'
        AND d.building NOT GLOB '*[^a-zA-Z0-9_.-]*'
        AND j.body GLOB '{"[a-z]*}' AND j.body NOT GLOB '*[^a-zE0-9_.,:"{}+-]*'
  THEN d.class || CASE WHEN d.building = '' THEN '' ELSE ',building=' || d.building END
    || ',community=' || d.community || ',device=' || d.device || ' '
    || replace(replace(substr(j.body, 2, length(j.body) - 2), '"', ''), ':', '=')
    || ' ' || j.ts_ms
  END
FROM journal j JOIN devices d ON d.id = j.device_id
WHERE j.id > ? AND j.kind = ? ORDER BY j.id LIMIT ?
"""


class JournalReader:
    """One sink's view of the journal. Create it in the thread that uses it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
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

    def read_lines(self, after_id: int, limit: int) -> list[LineRow]:
        """Like :meth:`read_telemetry`, with each row already a line-protocol point."""
        rows = self.conn.execute(_LINE_SQL, (after_id, TELEMETRY, limit)).fetchall()
        return [LineRow(*r) for r in rows]

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
