"""``GET /api/v1/audit``: who did what to which device, and the outcome (platform keys)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status
from starlette.responses import Response

from gateway.api.deps import AuditDep, PlatformDep
from gateway.api.models import (
    BAD_PARAMETER,
    PLATFORM_ONLY,
    UNAUTHORIZED,
    AuditPage,
    errors,
    schema_only,
)
from gateway.audit import Outcome
from gateway.store.queries import QueryError, parse_time

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
OUTCOMES = sorted(Outcome)


@router.get(
    "",
    response_model=AuditPage,  # for the schema only: see schema_only
    responses=errors(e400=BAD_PARAMETER, e401=UNAUTHORIZED, e403=PLATFORM_ONLY),
)
async def list_audit(
    audit: AuditDep,
    principal: PlatformDep,
    device: str | None = None,
    who: str | None = Query(None, alias="principal"),
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
) -> Response:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if outcome is not None and outcome not in OUTCOMES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"outcome: one of {', '.join(OUTCOMES)}")
    try:
        since_ms = parse_time(since, "since") if since else None
        until_ms = parse_time(until, "until") if until else None
        page = audit.query(
            communities=principal.communities,
            device=device,
            principal=who,
            outcome=Outcome(outcome) if outcome is not None else None,
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
            cursor=cursor,
        )
    except (QueryError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return schema_only({"entries": page.items, "next_cursor": page.next_cursor})
