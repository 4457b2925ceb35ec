"""``GET /api/v1/audit``: who did what to which device, and the outcome (platform keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status

from gateway.api.deps import GatewayDep, PlatformDep
from gateway.audit import Outcome
from gateway.store.queries import QueryError, parse_time

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
OUTCOMES = sorted(Outcome)


@router.get("")
async def list_audit(
    gateway: GatewayDep,
    principal: PlatformDep,
    device: str | None = None,
    who: str | None = Query(None, alias="principal"),
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if outcome is not None and outcome not in OUTCOMES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"outcome: one of {', '.join(OUTCOMES)}")
    try:
        since_ms = parse_time(since, "since") if since else None
        until_ms = parse_time(until, "until") if until else None
        page = gateway.audit.query(
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
    return {"entries": page.items, "next_cursor": page.next_cursor}
