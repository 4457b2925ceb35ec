"""``/api/v1/alerts`` (list, acknowledge) and ``/api/v1/webhooks`` (delivery state)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status

from gateway.api.deps import GatewayDep, PlatformDep
from gateway.rules.service import Alerting

router = APIRouter(prefix="/api/v1", tags=["alerts"])


def alerting(gateway: Any) -> Alerting:
    a: Alerting | None = gateway.alerting
    if a is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "alerting is not running")
    return a


@router.get("/alerts")
async def list_alerts(
    gateway: GatewayDep,
    principal: PlatformDep,
    status: Literal["active", "acknowledged", "cleared"] | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    rows = alerting(gateway).alerts.list(status, principal.communities, max(1, min(limit, 10000)))
    return {"alerts": [a.data() for a in rows], "count": len(rows)}


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(alert_id: int, gateway: GatewayDep, principal: PlatformDep) -> dict[str, Any]:
    a = alerting(gateway)
    found = a.alerts.by_id(alert_id)
    if found is None or not principal.may_see(found.community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    if found.status == "cleared":
        raise HTTPException(status.HTTP_409_CONFLICT, f"alert {alert_id} is already cleared")
    result = a.engine.acknowledge(alert_id, principal.name)
    return dict(result.data())


@router.get("/webhooks")
async def webhooks(gateway: GatewayDep, principal: PlatformDep) -> dict[str, Any]:
    if principal.communities is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "needs a key for every community")
    a = alerting(gateway)
    endpoints = a.outbox.stats(a.clock.now_ms())
    for e in endpoints:
        e["url"] = e["url"].split("?")[0]  # a query string may carry a token
    return {"endpoints": endpoints}
