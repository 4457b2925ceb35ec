"""``POST /api/v1/doors/{id}/unlock`` (residents and platform keys) and
``POST /api/v1/devices/{id}/commands`` (platform keys: barriers, lockers, doors).

Both run :meth:`gateway.commands.CommandService.execute`; this module only maps its outcome to
an HTTP answer.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway import audit as A
from gateway.api.deps import AnyPrincipalDep, GatewayDep, PlatformDep
from gateway.commands import Result

router = APIRouter(tags=["commands"])

STATUS = {
    A.OK: 200,
    A.REFUSED: 502,
    A.FORBIDDEN: 403,
    A.NOT_FOUND: 404,
    A.NOT_COMMANDABLE: 409,
    A.BAD_REQUEST: 422,
    A.RATE_LIMITED: 429,
    A.OFFLINE: 503,
    A.FAILED: 503,
    A.TIMEOUT: 504,
}


class UnlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(default=5, ge=1, le=30)


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = {}


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def answer(result: Result) -> JSONResponse:
    """``200 {"command_id", "ok": true, "latency_ms"}``, else ``{"detail", ...}``."""
    status = STATUS.get(result.outcome, 500)
    headers: dict[str, str] = {}
    if result.outcome == A.OK:
        body: dict[str, Any] = {
            "command_id": result.command_id,
            "ok": True,
            "latency_ms": result.latency_ms,
        }
    else:
        body = {"detail": result.reason or result.outcome, "outcome": result.outcome}
        if result.command_id:
            body.update(command_id=result.command_id, ok=False, latency_ms=result.latency_ms)
        if result.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(result.retry_after_s)))
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/api/v1/doors/{door_id}/unlock",
    responses={
        200: {"description": "the door acknowledged: `{command_id, ok: true, latency_ms}`"},
        401: {"description": "no, bad or expired token"},
        403: {"description": "not a door of this resident (audited)"},
        404: {"description": "no such door"},
        409: {"description": "a discovered device, or one without a command secret"},
        429: {"description": "too many attempts by this resident or on this door"},
        502: {"description": "the door refused the command (`detail`: its error)"},
        503: {"description": "the door is offline, or the broker is unavailable"},
        504: {"description": "no ack in time; the command expires at the door"},
    },
)
async def unlock(
    door_id: str,
    gateway: GatewayDep,
    principal: AnyPrincipalDep,
    body: UnlockBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    seconds = (body or UnlockBody()).seconds
    result = await gateway.commands.execute(
        principal,
        door_id,
        "unlock",
        {"seconds": seconds},
        idempotency_key=idempotency_key,
        doors_only=True,
    )
    return answer(result)


@router.post("/api/v1/devices/{device_id}/commands")
async def device_command(
    device_id: str,
    body: CommandBody,
    gateway: GatewayDep,
    principal: PlatformDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A signed command (`unlock`, `open_barrier`, `open_compartment`) with the args of the
    device's profile; answers like the unlock endpoint."""
    result = await gateway.commands.execute(
        principal, device_id, body.action, body.args, idempotency_key=idempotency_key
    )
    return answer(result)
