"""``GET /api/v1/events/stream``: device events, alerts and tickets as Server-Sent Events.

Each item's id is ``J-N``: the journal row of the last device event and the notice (alert,
ticket, trigger) sent so far. Both are durable and only grow, so a client that reconnects with
``Last-Event-ID`` gets exactly what it missed, from the store, then the live items.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, status
from sse_starlette import EventSourceResponse

from gateway.api.deps import GatewayDep, PlatformOrSessionDep
from gateway.rules.builtin import SEVERITIES

router = APIRouter(prefix="/api/v1/events", tags=["events"])
PAGE = 500


@dataclass(frozen=True, slots=True)
class Filters:
    communities: frozenset[str] | None
    classes: frozenset[str] | None
    severities: frozenset[str] | None
    kinds: frozenset[str]

    def community_ok(self, community: str) -> bool:
        return self.communities is None or community in self.communities

    def class_ok(self, device_class: str) -> bool:
        return self.classes is None or device_class in self.classes


def _split(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def parse_position(value: str | None, conn: sqlite3.Connection) -> tuple[int, int]:
    """``J-N`` from Last-Event-ID; absent: the current heads (only new items)."""
    if value:
        j, sep, n = value.strip().partition("-")
        if not sep or not j.isdigit() or not n.isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID: expected J-N")
        return int(j), int(n)
    (j,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
    (n,) = conn.execute("SELECT coalesce(max(id), 0) FROM notices").fetchone()
    return int(j), int(n)


def read_after(
    conn: sqlite3.Connection, j: int, n: int, f: Filters
) -> tuple[list[dict[str, Any]], int, int]:
    """Items after position (j, n) that pass the filters, and the new position."""
    out: list[dict[str, Any]] = []
    if "events" in f.kinds and f.severities is None:
        rows = conn.execute(
            "SELECT j.id, d.device, d.community, d.class, j.ts_ms, j.body FROM journal j"
            " JOIN devices d ON d.id = j.device_id WHERE j.id > ? AND j.kind = 1"  # EVENT
            " ORDER BY j.id LIMIT ?",  # a literal kind lets SQLite use the index journal_events
            (j, PAGE),
        ).fetchall()
        for row_id, device, community, cls, ts_ms, body in rows:
            j = row_id
            if not (f.community_ok(community) and f.class_ok(cls)):
                continue
            attrs = orjson.loads(body)
            data = {
                "id": row_id,
                "device": device,
                "community": community,
                "class": cls,
                "event": attrs.pop("event", None),
                "ts": ts_ms,
                "attrs": attrs,
            }
            out.append({"id": f"{j}-{n}", "event": "event", "data": orjson.dumps(data).decode()})
    if "alerts" in f.kinds or "tickets" in f.kinds:
        rows = conn.execute(
            "SELECT id, type, community, class, severity, body FROM notices WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (n, PAGE),
        ).fetchall()
        for row_id, type_, community, cls, severity, body in rows:
            n = row_id
            kind = "alerts" if type_.startswith("alert.") else "tickets"
            if kind not in f.kinds or not f.community_ok(community) or not f.class_ok(cls):
                continue
            if f.severities is not None and severity not in f.severities:
                continue
            out.append({"id": f"{j}-{n}", "event": type_, "data": body})
    return out, j, n


@router.get("/stream")
async def stream(
    gateway: GatewayDep,
    principal: PlatformOrSessionDep,
    community: str | None = None,
    device_class: str | None = Query(None, alias="class"),
    severity: str | None = None,
    types: str = "events,alerts,tickets",
    last_event_id: str | None = Header(None),
) -> EventSourceResponse:
    """Filters take comma-separated lists: ``community``, ``class``, ``severity`` (alerts and
    tickets of those severities; device events have none and are left out), ``types``
    (``events``, ``alerts`` — which includes service triggers such as ``parcel.reminder`` —
    and ``tickets``)."""
    a = gateway.alerting
    communities = _split(community)
    if principal.communities is not None:
        communities = (communities or principal.communities) & principal.communities
    severities = _split(severity)
    if severities is not None and not severities <= set(SEVERITIES):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"severity: one of {SEVERITIES}")
    kinds = _split(types) or frozenset()
    if not kinds <= {"events", "alerts", "tickets"}:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "types: events, alerts, tickets")
    f = Filters(communities, _split(device_class), severities, kinds)
    conn = gateway.store.conn
    j, n = parse_position(last_event_id, conn)

    async def items() -> AsyncIterator[dict[str, Any]]:
        nonlocal j, n
        wake = a.hub.subscribe()
        try:
            while True:
                wake.clear()
                batch, j, n = read_after(conn, j, n, f)
                for item in batch:
                    yield item
                if not batch:
                    await wake.wait()
        finally:
            a.hub.unsubscribe(wake)

    return EventSourceResponse(items(), ping=15)
