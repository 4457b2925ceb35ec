"""Alerts: active -> acknowledged -> cleared, one open alert per (device, rule).

Every change is a row in ``alerts`` and a notice in the outbox, in the caller's transaction.
Open alerts are also held in memory (the engine asks "is this already raised?" per message).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.rules.builtin import Rule
from gateway.rules.db import iso
from gateway.store.schema import migrate
from gateway.webhooks.outbox import Outbox

STATUSES = ("active", "acknowledged", "cleared")
_COLS = (
    "id, device, community, class, rule, title, severity, status, raised_ms, last_ms, count,"
    " acknowledged_ms, acknowledged_by, cleared_ms, cleared_reason, details"
)


@dataclass(slots=True)
class Alert:
    id: int
    device: str
    community: str
    device_class: str
    rule: str
    title: str
    severity: str
    status: str
    raised_ms: int
    last_ms: int
    count: int = 1
    acknowledged_ms: int | None = None
    acknowledged_by: str = ""
    cleared_ms: int | None = None
    cleared_reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "community": self.community,
            "device": self.device,
            "class": self.device_class,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "raised_at": iso(self.raised_ms),
            "last_at": iso(self.last_ms),
            "count": self.count,
            "details": self.details,
        }
        if self.acknowledged_ms is not None:
            d["acknowledged_at"] = iso(self.acknowledged_ms)
            d["acknowledged_by"] = self.acknowledged_by
        if self.cleared_ms is not None:
            d["cleared_at"] = iso(self.cleared_ms)
            d["cleared_reason"] = self.cleared_reason
        return d


def _row(r: tuple[Any, ...]) -> Alert:
    a = Alert(*r[:15])
    a.details = orjson.loads(r[15])
    return a


class AlertBook:
    """The alerts table and the open alerts in memory."""

    def __init__(self, conn: Callable[[], sqlite3.Connection], outbox: Outbox) -> None:
        self._conn = conn
        self.outbox = outbox
        self.open: dict[tuple[str, str], Alert] = {}
        self.raised_total = 0
        self.cleared_total = 0

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn()

    def load(self) -> None:
        migrate(self.conn)
        for r in self.conn.execute(f"SELECT {_COLS} FROM alerts WHERE status != 'cleared'"):  # noqa: S608
            a = _row(r)
            self.open[(a.device, a.rule)] = a

    def get(self, device: str, rule: str) -> Alert | None:
        return self.open.get((device, rule))

    def _notify(self, type_: str, a: Alert, at_ms: int) -> None:
        self.outbox.publish(
            type_,
            a.data(),
            community=a.community,
            device_class=a.device_class,
            severity=a.severity,
            at_ms=at_ms,
        )

    def raise_(
        self,
        rule: Rule,
        device: str,
        community: str,
        device_class: str,
        details: dict[str, Any],
        at_ms: int,
    ) -> tuple[Alert, bool]:
        """Raise, or count a repeat of the open alert. Returns (alert, newly raised)."""
        a = self.open.get((device, rule.name))
        if a is not None:
            a.count += 1
            a.last_ms = at_ms
            a.details = {**a.details, **details}
            self.conn.execute(
                "UPDATE alerts SET count=?, last_ms=?, details=? WHERE id=?",
                (a.count, at_ms, orjson.dumps(a.details).decode(), a.id),
            )
            return a, False
        cur = self.conn.execute(
            "INSERT INTO alerts (device, community, class, rule, title, severity, status,"
            " raised_ms, last_ms, details) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
            (
                device,
                community,
                device_class,
                rule.name,
                rule.title,
                rule.severity,
                at_ms,
                at_ms,
                orjson.dumps(details).decode(),
            ),
        )
        a = Alert(
            int(cur.lastrowid or 0),
            device,
            community,
            device_class,
            rule.name,
            rule.title,
            rule.severity,
            "active",
            at_ms,
            at_ms,
            details=details,
        )
        self.open[(device, rule.name)] = a
        self.raised_total += 1
        self._notify("alert.raised", a, at_ms)
        return a, True

    def acknowledge(self, alert_id: int, by: str, at_ms: int) -> Alert | None:
        """Acknowledge an active alert (idempotent); None if there is no such alert."""
        for a in self.open.values():
            if a.id == alert_id:
                if a.status == "active":
                    a.status, a.acknowledged_ms, a.acknowledged_by = "acknowledged", at_ms, by
                    self.conn.execute(
                        "UPDATE alerts SET status='acknowledged', acknowledged_ms=?,"
                        " acknowledged_by=? WHERE id=?",
                        (at_ms, by, a.id),
                    )
                    self._notify("alert.acknowledged", a, at_ms)
                return a
        return self.by_id(alert_id)

    def clear(self, device: str, rule: str, at_ms: int, reason: str) -> Alert | None:
        a = self.open.pop((device, rule), None)
        if a is None:
            return None
        a.status, a.cleared_ms, a.cleared_reason = "cleared", at_ms, reason
        self.conn.execute(
            "UPDATE alerts SET status='cleared', cleared_ms=?, cleared_reason=? WHERE id=?",
            (at_ms, reason, a.id),
        )
        self.cleared_total += 1
        self._notify("alert.cleared", a, at_ms)
        return a

    def by_id(self, alert_id: int) -> Alert | None:
        r = self.conn.execute(f"SELECT {_COLS} FROM alerts WHERE id=?", (alert_id,)).fetchone()  # noqa: S608
        return None if r is None else _row(r)

    def list(
        self, status: str | None, communities: frozenset[str] | None, limit: int = 1000
    ) -> list[Alert]:
        sql = f"SELECT {_COLS} FROM alerts"  # noqa: S608
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status=?"
            params.append(status)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit * 4 if communities is not None else limit)
        rows = [_row(r) for r in self.conn.execute(sql, params)]
        if communities is not None:
            rows = [a for a in rows if a.community in communities]
        return rows[:limit]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self.conn.execute("SELECT status, count(*) FROM alerts GROUP BY status"):
            out[status] = n
        return out
