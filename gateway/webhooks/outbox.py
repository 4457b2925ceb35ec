"""The durable outbox: every notice (alert, ticket, trigger) in one table, and one outbox row
per notice and endpoint until that endpoint has accepted it.

A notice's ``id`` is also its position in the live stream; an outbox row's ``msg_id`` is the
``webhook-id`` of every attempt. Rows are written in the same transaction as the alert or
ticket change that caused them, so a crash loses neither or both.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.rules.db import iso
from gateway.store.schema import migrate


@dataclass(frozen=True, slots=True)
class Pending:
    """The head of an endpoint's queue."""

    row_id: int
    msg_id: str
    body: bytes
    created_ms: int
    attempts: int
    next_ms: int


class Outbox:
    """Notices and per-endpoint queues on the store's connection (event loop only)."""

    def __init__(
        self,
        conn: Callable[[], sqlite3.Connection],
        urls: list[str],
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._conn = conn
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.urls = urls
        self.endpoint_ids: dict[str, int] = {}
        self.listeners: list[Callable[[], None]] = []

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn()

    def open(self) -> None:
        migrate(self.conn)
        for url in self.urls:
            self.conn.execute("INSERT OR IGNORE INTO webhook_endpoints (url) VALUES (?)", (url,))
            (eid,) = self.conn.execute(
                "SELECT id FROM webhook_endpoints WHERE url=?", (url,)
            ).fetchone()
            self.endpoint_ids[url] = int(eid)

    def publish(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        community: str,
        device_class: str,
        severity: str,
        at_ms: int,
    ) -> int:
        """Record a notice and queue it for every endpoint (inside the caller's transaction)."""
        body = orjson.dumps({"type": type_, "timestamp": iso(at_ms), "data": data})
        queued_ms = self.now_ms()  # not at_ms (the device's time): ages and retries count from here
        cur = self.conn.execute(
            "INSERT INTO notices (type, community, class, severity, created_ms, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (type_, community, device_class, severity, at_ms, body.decode()),
        )
        notice_id = int(cur.lastrowid or 0)
        self.conn.executemany(
            "INSERT INTO webhook_outbox (endpoint, notice_id, msg_id, created_ms, next_ms)"
            " VALUES (?, ?, ?, ?, 0)",
            [
                (eid, notice_id, f"msg_{uuid.uuid4().hex}", queued_ms)
                for eid in self.endpoint_ids.values()
            ],
        )
        for listener in self.listeners:
            listener()
        return notice_id

    def head(self, endpoint: int) -> Pending | None:
        row = self.conn.execute(
            "SELECT o.id, o.msg_id, n.body, o.created_ms, o.attempts, o.next_ms"
            " FROM webhook_outbox o JOIN notices n ON n.id = o.notice_id"
            " WHERE o.endpoint=? ORDER BY o.id LIMIT 1",
            (endpoint,),
        ).fetchone()
        if row is None:
            return None
        return Pending(row[0], row[1], row[2].encode(), row[3], row[4], row[5])

    def delivered(self, endpoint: int, row_id: int) -> None:
        self.conn.execute("DELETE FROM webhook_outbox WHERE id=?", (row_id,))
        self.conn.execute(
            "UPDATE webhook_endpoints SET delivered_total = delivered_total + 1 WHERE id=?",
            (endpoint,),
        )

    def failed(self, endpoint: int, row_id: int, next_ms: int, error: str) -> None:
        self.conn.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, next_ms=?, last_error=? WHERE id=?",
            (next_ms, error[:300], row_id),
        )
        self.conn.execute(
            "UPDATE webhook_endpoints SET failures_total = failures_total + 1 WHERE id=?",
            (endpoint,),
        )

    def set_failing(self, endpoint: int, since_ms: int | None) -> None:
        self.conn.execute(
            "UPDATE webhook_endpoints SET failing_since_ms=? WHERE id=?", (since_ms, endpoint)
        )

    def stats(self, now_ms: int) -> list[dict[str, Any]]:
        """Per endpoint: depth, age of the oldest undelivered notice, totals, failing."""
        out = []
        for url, eid in self.endpoint_ids.items():
            depth, oldest = self.conn.execute(
                "SELECT count(*), min(created_ms) FROM webhook_outbox WHERE endpoint=?", (eid,)
            ).fetchone()
            failing, delivered, failures = self.conn.execute(
                "SELECT failing_since_ms, delivered_total, failures_total"
                " FROM webhook_endpoints WHERE id=?",
                (eid,),
            ).fetchone()
            head = self.head(eid)
            out.append(
                {
                    "endpoint": eid,
                    "url": url,
                    "depth": depth,
                    "oldest_age_s": 0.0 if oldest is None else max(0, now_ms - oldest) / 1000,
                    "delivered_total": delivered,
                    "failures_total": failures,
                    "failing": failing is not None,
                    "failing_since": iso(failing),
                    "last_error": "" if head is None else self._last_error(head.row_id),
                }
            )
        return out

    def _last_error(self, row_id: int) -> str:
        row = self.conn.execute(
            "SELECT last_error FROM webhook_outbox WHERE id=?", (row_id,)
        ).fetchone()
        return "" if row is None else str(row[0])

    def is_failing(self, endpoint: int) -> bool:
        row = self.conn.execute(
            "SELECT failing_since_ms FROM webhook_endpoints WHERE id=?", (endpoint,)
        ).fetchone()
        return row is not None and row[0] is not None
