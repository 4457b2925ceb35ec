"""``/api/v1/alerts`` (list, acknowledge) and ``/api/v1/webhooks`` (delivery state)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status

from gateway.api.deps import AlertingDep, PlatformDep
from gateway.rules.service import AlertCleared, AlertNotFound

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts")
async def list_alerts(
    alerting: AlertingDep,
    principal: PlatformDep,
    status: Literal["active", "acknowledged", "cleared"] | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    rows = alerting.alerts.list(status, principal.communities, max(1, min(limit, 10000)))
    return {"alerts": [a.data() for a in rows], "count": len(rows)}


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(
    alert_id: int, alerting: AlertingDep, principal: PlatformDep
) -> dict[str, Any]:
    try:
        return alerting.acknowledge(alert_id, principal.name, principal.may_see)
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except AlertCleared as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/webhooks")
async def webhooks(alerting: AlertingDep, principal: PlatformDep) -> dict[str, Any]:
    if principal.communities is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "needs a key for every community")
    endpoints = alerting.outbox.stats(alerting.clock.now_ms())
    for e in endpoints:
        e["url"] = e["url"].split("?")[0]  # a query string may carry a token
    return {"endpoints": endpoints}
