"""Read queries behind the REST API: reading history (with downsampling) and events.

They run on their own read connection (WAL lets them read while the ingest writes), from the
API's worker threads; a lock keeps one query at a time on the connection.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.store.schema import TELEMETRY, connect

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_LIMIT = 100_000
TIME_RANGE_MS = (-62_135_596_800_000, 253_402_300_799_999)
"""Epoch milliseconds of years 1 to 9999: what a time parameter may be (SQLite's integers
end at 2**63, and Python's datetime at year 9999)."""
MAX_DURATION_MS = 100 * 365 * 86_400_000
MAX_ID = 2**63 - 1


def parse_id(text: str, name: str) -> int:
    """A row id or position in a cursor: digits, within SQLite's integers."""
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_ID:
        raise QueryError(f"{name}={text[:40]!r} is not a cursor of this query")
    return int(text)


class QueryError(ValueError):
    """A bad query parameter; the API answers 400 with this message."""


def _signed(text: str) -> int:
    """One signed part of a readings cursor (``ts:seq``; a missing seq is stored as -1)."""
    return parse_id(text[1:], "cursor") * -1 if text.startswith("-") else parse_id(text, "cursor")


def parse_duration(text: str) -> int:
    """``10s``, ``5m``, ``1h``, ``1d``, ``500ms`` -> milliseconds."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0 or len(m.group(1)) > 15:
        raise QueryError(f"every={text[:40]!r}: expected a duration such as 10s, 5m, 1h or 1d")
    ms = int(m.group(1)) * _UNITS_MS[m.group(2)]
    if ms > MAX_DURATION_MS:
        raise QueryError(f"every={text[:40]!r}: at most 100 years")
    return ms


def parse_time(text: str, name: str) -> int:
    """ISO-8601 with an offset, or epoch milliseconds -> epoch milliseconds."""
    t = text.strip()
    if re.fullmatch(r"-?\d{1,20}", t) and TIME_RANGE_MS[0] <= int(t) <= TIME_RANGE_MS[1]:
        return int(t)
    if re.fullmatch(r"-?\d+", t):
        raise QueryError(f"{name}={text[:40]!r}: epoch milliseconds of years 1 to 9999")
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}={text!r}: expected ISO-8601 or epoch milliseconds") from None
    if dt.tzinfo is None:
        raise QueryError(f"{name}={text!r}: an ISO-8601 time needs an offset (Z or +08:00)")
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


class Queries:
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def readings(
        self,
        device_id: int,
        field: str,
        *,
        since: int,
        until: int,
        every_ms: int | None,
        counter: bool,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Points ``{ts, value}`` of one field, oldest first; downsampled when ``every_ms``:
        the mean per bucket for gauges, the last value for counters."""
        if not _FIELD.match(field):
            raise QueryError(f"field={field!r} is not a field name")
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit={limit}: expected 1 to {MAX_LIMIT}")
        path = f"$.{field}"
        after_ts, after_seq = since - 1, 2**62
        if cursor:
            a, _, b = cursor.partition(":")
            after_ts, after_seq = _signed(a), _signed(b)
        with self._lock:
            conn = self._c()
            if every_ms is None:
                rows = conn.execute(
                    "SELECT ts_ms, seq, json_extract(body, ?) FROM journal"
                    " WHERE device_id = ? AND kind = ? AND ts_ms <= ?"
                    " AND (ts_ms > ? OR (ts_ms = ? AND seq > ?)) AND ts_ms >= ?"
                    " AND json_type(body, ?) IN ('integer', 'real', 'true', 'false')"
                    " ORDER BY ts_ms, seq LIMIT ?",
                    (
                        path,
                        device_id,
                        TELEMETRY,
                        until,
                        after_ts,
                        after_ts,
                        after_seq,
                        since,
                        path,
                        limit + 1,
                    ),
                ).fetchall()
                more = len(rows) > limit
                rows = rows[:limit]
                points = [{"ts": ts, "value": v} for ts, _, v in rows]
                nxt = f"{rows[-1][0]}:{rows[-1][1]}" if more else None
                return Page(points, nxt)
            start = max(since, after_ts + 1) if cursor else since
            agg = (
                "SELECT b, v FROM (SELECT ts_ms / :e * :e AS b, v, row_number() OVER"
                " (PARTITION BY ts_ms / :e ORDER BY ts_ms DESC, seq DESC) AS rn FROM src)"
                " WHERE rn = 1 ORDER BY b LIMIT :n"
                if counter
                else "SELECT ts_ms / :e * :e AS b, avg(v) FROM src GROUP BY b ORDER BY b LIMIT :n"
            )
            # the SQL is built from constants only; every value is a parameter
            rows = conn.execute(
                "WITH src AS (SELECT ts_ms, seq, json_extract(body, :p) AS v FROM journal"  # noqa: S608
                " WHERE device_id = :d AND kind = :k AND ts_ms >= :s AND ts_ms <= :u"
                " AND json_type(body, :p) IN ('integer', 'real', 'true', 'false')) " + agg,
                {
                    "p": path,
                    "d": device_id,
                    "k": TELEMETRY,
                    "s": start,
                    "u": until,
                    "e": every_ms,
                    "n": limit + 1,
                },
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        points = [{"ts": b, "value": v} for b, v in rows]
        nxt = f"{rows[-1][0] + every_ms - 1}:0" if more else None
        return Page(points, nxt)

    def events(
        self,
        device_ids: list[int] | None,
        *,
        since: int,
        until: int,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Events of some devices (None: all), oldest first, paged by journal row id."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit={limit}: expected 1 to {MAX_LIMIT}")
        after = 0
        if cursor:
            after = parse_id(cursor, "cursor")
        sql = (
            "SELECT j.id, d.device, d.community, d.class, j.ts_ms, j.flag, j.body FROM journal j"
            " JOIN devices d ON d.id = j.device_id WHERE j.kind = 1 AND j.id > ?"  # EVENT
            " AND j.ts_ms >= ? AND j.ts_ms <= ?"
        )
        params: list[Any] = [after, since, until]  # a literal kind: the index journal_events
        if device_ids is not None:
            if not device_ids:
                return Page([], None)
            sql += f" AND j.device_id IN ({','.join('?' * len(device_ids))})"
            params += device_ids
        sql += " ORDER BY j.id LIMIT ?"
        params.append(limit + 1)
        with self._lock:
            rows = self._c().execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = []
        for row_id, device, community, cls, ts, flag, body in rows:
            attrs = orjson.loads(body)
            name = attrs.pop("event", None)
            item = {
                "id": row_id,
                "device": device,
                "community": community,
                "class": cls,
                "event": name,
                "ts": ts,
                "attrs": attrs,
            }
            if flag:
                item["ts_flag"] = flag
            items.append(item)
        return Page(items, str(rows[-1][0]) if more else None)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = (
                self._c()
                .execute(
                    "SELECT id, received_ms, topic, reason, detail, size, head FROM dead_letters"
                    " ORDER BY id DESC LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [
            {
                "id": r[0],
                "received": r[1],
                "topic": r[2],
                "reason": r[3],
                "detail": r[4],
                "size": r[5],
                "head": bytes(r[6]).decode("utf-8", errors="replace"),
            }
            for r in rows
        ]

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return int(self._c().execute(sql, params).fetchone()[0])
