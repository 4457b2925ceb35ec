"""Repair tickets: one open ticket per (device, rule), opened by a ticket-worthy alert,
updated when the fault repeats or the device recovers, resolved automatically where the rule
says so (or by the platform)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.alerts import Alert
from gateway.rules.builtin import Rule
from gateway.rules.db import iso
from gateway.store.schema import migrate
from gateway.webhooks.outbox import Outbox

_COLS = (
    "id, device, community, class, rule, title, severity, status, opened_ms, updated_ms,"
    " occurrences, recovered_ms, resolved_ms, resolution, alert_id"
)


@dataclass(slots=True)
class Ticket:
    id: int
    device: str
    community: str
    device_class: str
    rule: str
    title: str
    severity: str
    status: str
    opened_ms: int
    updated_ms: int
    occurrences: int
    recovered_ms: int | None
    resolved_ms: int | None
    resolution: str
    alert_id: int

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
            "opened_at": iso(self.opened_ms),
            "updated_at": iso(self.updated_ms),
            "occurrences": self.occurrences,
            "alert_id": self.alert_id,
            "recovered": self.recovered_ms is not None,
        }
        if self.recovered_ms is not None:
            d["recovered_at"] = iso(self.recovered_ms)
        if self.resolved_ms is not None:
            d["resolved_at"] = iso(self.resolved_ms)
            d["resolution"] = self.resolution
        return d


class TicketBook:
    def __init__(self, conn: Callable[[], sqlite3.Connection], outbox: Outbox) -> None:
        self._conn = conn
        self.outbox = outbox
        self.open: dict[tuple[str, str], Ticket] = {}

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn()

    def load(self) -> None:
        migrate(self.conn)
        for r in self.conn.execute(f"SELECT {_COLS} FROM tickets WHERE status='open'"):  # noqa: S608
            t = Ticket(*r)
            self.open[(t.device, t.rule)] = t

    def _save(self, t: Ticket, type_: str, at_ms: int) -> None:
        self.conn.execute(
            "UPDATE tickets SET status=?, updated_ms=?, occurrences=?, recovered_ms=?,"
            " resolved_ms=?, resolution=?, alert_id=? WHERE id=?",
            (
                t.status,
                t.updated_ms,
                t.occurrences,
                t.recovered_ms,
                t.resolved_ms,
                t.resolution,
                t.alert_id,
                t.id,
            ),
        )
        self._notify(type_, t, at_ms)

    def _notify(self, type_: str, t: Ticket, at_ms: int) -> None:
        self.outbox.publish(
            type_,
            t.data(),
            community=t.community,
            device_class=t.device_class,
            severity=t.severity,
            at_ms=at_ms,
        )

    def on_raised(self, rule: Rule, alert: Alert, at_ms: int) -> Ticket:
        """A new alert of a ticket-worthy rule: open a ticket, or update the open one."""
        t = self.open.get((alert.device, rule.name))
        if t is not None:
            t.occurrences += 1
            t.updated_ms = at_ms
            t.recovered_ms = None
            t.alert_id = alert.id
            self._save(t, "ticket.updated", at_ms)
            return t
        cur = self.conn.execute(
            "INSERT INTO tickets (device, community, class, rule, title, severity, status,"
            " opened_ms, updated_ms, alert_id) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
            (
                alert.device,
                alert.community,
                alert.device_class,
                rule.name,
                rule.title,
                rule.severity,
                at_ms,
                at_ms,
                alert.id,
            ),
        )
        t = Ticket(
            int(cur.lastrowid or 0),
            alert.device,
            alert.community,
            alert.device_class,
            rule.name,
            rule.title,
            rule.severity,
            "open",
            at_ms,
            at_ms,
            1,
            None,
            None,
            "",
            alert.id,
        )
        self.open[(t.device, t.rule)] = t
        self._notify("ticket.opened", t, at_ms)
        return t

    def on_recovered(self, device: str, rule: Rule, at_ms: int) -> Ticket | None:
        """The fault ended: resolve at once (``resolve_after_s == 0``) or note the recovery."""
        t = self.open.get((device, rule.name))
        if t is None:
            return None
        if rule.resolve_after_s == 0:
            return self.resolve(t, at_ms, "recovered")
        t.recovered_ms = t.updated_ms = at_ms
        self._save(t, "ticket.updated", at_ms)
        return t

    def resolve(self, t: Ticket, at_ms: int, resolution: str) -> Ticket:
        self.open.pop((t.device, t.rule), None)
        t.status, t.resolved_ms, t.updated_ms, t.resolution = "resolved", at_ms, at_ms, resolution
        self._save(t, "ticket.resolved", at_ms)
        return t

    def by_id(self, ticket_id: int) -> Ticket | None:
        r = self.conn.execute(f"SELECT {_COLS} FROM tickets WHERE id=?", (ticket_id,)).fetchone()  # noqa: S608
        return None if r is None else Ticket(*r)

    def list(
        self, status: str | None, communities: frozenset[str] | None, limit: int = 1000
    ) -> list[Ticket]:
        sql = f"SELECT {_COLS} FROM tickets"  # noqa: S608
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status=?"
            params.append(status)
        sql += " ORDER BY id DESC"
        rows = [Ticket(*r) for r in self.conn.execute(sql, params)]
        if communities is not None:
            rows = [t for t in rows if t.community in communities]
        return rows[:limit]
