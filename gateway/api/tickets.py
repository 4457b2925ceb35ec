"""``/api/v1/tickets``: repair tickets opened by the rules."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from starlette.responses import Response

from gateway.api.deps import AlertingDep, PlatformDep
from gateway.api.models import PLATFORM_ONLY, UNAUTHORIZED, Ticket, TicketList, errors, schema_only

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


@router.get(
    "",
    response_model=TicketList,  # for the schema only: see schema_only
    responses=errors(e401=UNAUTHORIZED, e403=PLATFORM_ONLY),
)
async def list_tickets(
    alerting: AlertingDep,
    principal: PlatformDep,
    status: Literal["open", "resolved"] | None = None,
    limit: int = 1000,
) -> Response:
    rows = alerting.tickets.list(status, principal.communities, max(1, min(limit, 10000)))
    return schema_only({"tickets": [t.data() for t in rows], "count": len(rows)})


@router.post(
    "/{ticket_id}/resolve",
    response_model=Ticket,
    response_model_exclude_unset=True,
    responses=errors(
        e401=UNAUTHORIZED,
        e403=PLATFORM_ONLY,
        e404="no such ticket (or outside this key's communities)",
    ),
)
async def resolve(ticket_id: int, alerting: AlertingDep, principal: PlatformDep) -> dict[str, Any]:
    found = alerting.tickets.by_id(ticket_id)
    if found is None or not principal.may_see(found.community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
    result = alerting.engine.resolve_ticket(ticket_id, principal.name)
    return dict(result.data())
