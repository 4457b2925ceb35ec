"""``/api/v1/tickets``: repair tickets opened by the rules."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status

from gateway.api.deps import AlertingDep, PlatformDep

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


@router.get("")
async def list_tickets(
    alerting: AlertingDep,
    principal: PlatformDep,
    status: Literal["open", "resolved"] | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    rows = alerting.tickets.list(status, principal.communities, max(1, min(limit, 10000)))
    return {"tickets": [t.data() for t in rows], "count": len(rows)}


@router.post("/{ticket_id}/resolve")
async def resolve(ticket_id: int, alerting: AlertingDep, principal: PlatformDep) -> dict[str, Any]:
    found = alerting.tickets.by_id(ticket_id)
    if found is None or not principal.may_see(found.community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    result = alerting.engine.resolve_ticket(ticket_id, principal.name)
    return dict(result.data())
