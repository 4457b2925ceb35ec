"""``/api/v1/alerts`` (list, acknowledge) and ``/api/v1/webhooks`` (delivery state)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from starlette.responses import Response

from gateway.api.deps import AlertingDep, PlatformDep
from gateway.api.models import PLATFORM_ONLY, UNAUTHORIZED, Alert, AlertList, errors, schema_only
from gateway.rules.service import AlertCleared, AlertNotFound

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get(
    "/alerts",
    response_model=AlertList,  # for the schema only: see schema_only
    responses=errors(e401=UNAUTHORIZED, e403=PLATFORM_ONLY),
)
async def list_alerts(
    alerting: AlertingDep,
    principal: PlatformDep,
    status: Literal["active", "acknowledged", "cleared"] | None = None,
    limit: int = 1000,
) -> Response:
    rows = alerting.alerts.list(status, principal.communities, max(1, min(limit, 10000)))
    return schema_only({"alerts": [a.data() for a in rows], "count": len(rows)})


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=Alert,
    response_model_exclude_unset=True,
    responses=errors(
        e401=UNAUTHORIZED,
        e403=PLATFORM_ONLY,
        e404="no such alert (or outside this key's communities)",
        e409="the alert is already cleared",
    ),
)
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
