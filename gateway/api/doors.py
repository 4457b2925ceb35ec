"""``POST /api/v1/doors/{id}/unlock`` (residents and platform keys) and
``POST /api/v1/devices/{id}/commands`` (platform keys: barriers, lockers, doors).

Both run :meth:`gateway.commands.CommandService.execute`; this module only maps its outcome to
an HTTP answer.

The unlock is a plain FastAPI route. A hand-written Starlette twin once served it ahead of
the FastAPI routes, redoing FastAPI's parameter checks (with a parity test), to spend less
gateway CPU per unlock. It was removed after ``bench/unlock.py`` (50 concurrent residents, 20
rounds) was run with and without it, alternating, on a shared 2-core machine: it saved about
0.3 ms of gateway CPU per unlock (0.70 against 1.00 ms, medians of 5 rounds each, no
background load), at most ~15 ms for the last of 50 simultaneous unlocks, while the unlock's
p99 under 5,000 readings/s of background load could not tell the two apart (21 rounds each,
in four sets whose medians went either way). Against the 150 ms target that keeps the
margin of ``latency.unlock_p99_ms`` (``bench/results.json``). Measure again before bringing a
fast path back.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.api.deps import AnyPrincipalDep, CommandsDep, PlatformDep
from gateway.api.models import (
    PLATFORM_ONLY,
    UNAUTHORIZED,
    CommandDone,
    CommandRefused,
    ErrorBody,
    ValidationBody,
)
from gateway.audit import Outcome
from gateway.commands import Result

router = APIRouter(tags=["commands"])

STATUS = {
    Outcome.OK: 200,
    Outcome.REFUSED: 502,
    Outcome.FORBIDDEN: 403,
    Outcome.NOT_FOUND: 404,
    Outcome.NOT_COMMANDABLE: 409,
    Outcome.BAD_REQUEST: 422,
    Outcome.RATE_LIMITED: 429,
    Outcome.OFFLINE: 503,
    Outcome.FAILED: 503,
    Outcome.TIMEOUT: 504,
}


class UnlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(default=5, ge=1, le=30)


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = {}

    @field_validator("args")
    @classmethod
    def _storable(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments are signed and audited as JSON: no number JSON or SQLite cannot hold."""
        for key, value in args.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"args.{key}: not a finite number")
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise ValueError(f"args.{key}: out of range")
        return args


def _refused(description: str) -> dict[str, Any]:
    return {"model": CommandRefused, "description": description}


# what the device (or the broker) answered, or did not: the same for every command
_COMMAND_FAILURES: dict[int | str, dict[str, Any]] = {
    429: _refused("too many attempts by this resident or on this device (`Retry-After`)"),
    502: _refused("the device refused the command (`detail`: its error)"),
    503: _refused(
        "the device is offline or never seen, or the broker is unavailable; once the broker"
        " took the command, the body says until when the device may still execute it"
    ),
    504: _refused(
        "no ack in time: `expires_at`, `may_execute_until` (epoch ms: the device may still"
        " execute it until then) and `late_execution` say what the device may still do; a"
        " late execution is audited as `late_ok` and raises an alert"
    ),
}

IDEMPOTENCY_KEY_MAX = 200
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=IDEMPOTENCY_KEY_MAX)
]


def answer(result: Result) -> JSONResponse:
    """``200 {"command_id", "ok": true, "latency_ms"}``, else ``{"detail", ...}``."""
    status = STATUS.get(result.outcome, 500)
    headers: dict[str, str] = {}
    if result.outcome == Outcome.OK:
        body: dict[str, Any] = {
            "command_id": result.command_id,
            "ok": True,
            "latency_ms": result.latency_ms,
        }
    else:
        body = {"detail": result.reason or result.outcome, "outcome": result.outcome}
        if result.command_id:
            body.update(command_id=result.command_id, ok=False, latency_ms=result.latency_ms)
        if result.may_execute_until_ms is not None:
            body.update(
                expires_at=result.expires_at_ms,
                may_execute_until=result.may_execute_until_ms,
                late_execution=_late_execution(result),
            )
        if result.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(result.retry_after_s)))
    return JSONResponse(body, status_code=status, headers=headers)


def _late_execution(result: Result) -> str:
    """What the device may still do with a command it did not confirm in time."""
    if result.command_rule is not None and result.command_rule >= 2:
        may = (
            "the device executes nothing after expires_at by its own clock (command rule 2):"
            " if its clock agrees with the gateway's it will not execute this command; one"
            " running behind (by up to 30 s) may still execute it until may_execute_until"
        )
    else:
        may = (
            "the device's firmware allows 30 s of clock skew past expires_at (command rule 1):"
            " it may still execute this command until may_execute_until"
        )
    return f"{may}; an execution after this answer is audited as late_ok and raises an alert"


@router.post(
    "/api/v1/doors/{door_id}/unlock",
    response_model=CommandDone,
    responses={
        200: {"description": "the door acknowledged"},
        401: {"model": ErrorBody, "description": UNAUTHORIZED},
        403: _refused("not a door of this resident (audited)"),
        404: _refused("no such door"),
        409: _refused("a discovered device, or one without a command secret"),
        422: {
            "model": ValidationBody | CommandRefused,
            "description": "a bad body or `Idempotency-Key` header (FastAPI's format), or an"
            " `Idempotency-Key` reused for another request (`outcome`: `bad_request`)",
        },
        **_COMMAND_FAILURES,
    },
)
async def unlock(
    door_id: str,
    commands: CommandsDep,
    principal: AnyPrincipalDep,
    body: UnlockBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open a door for ``seconds`` (default 5): a resident's own entrance or a gate of their
    community, or any door of a platform key's communities."""
    result = await commands.execute(
        principal,
        door_id,
        "unlock",
        {"seconds": (body or UnlockBody()).seconds},
        idempotency_key=idempotency_key,
        doors_only=True,
    )
    return answer(result)


@router.post(
    "/api/v1/devices/{device_id}/commands",
    response_model=CommandDone,
    responses={
        200: {"description": "the device acknowledged"},
        401: {"model": ErrorBody, "description": UNAUTHORIZED},
        403: {"model": ErrorBody, "description": PLATFORM_ONLY},
        404: _refused("no such device (or outside this key's communities)"),
        409: _refused(
            "a discovered device, one without a command secret, or of a class"
            " that takes no commands"
        ),
        422: {
            "model": ValidationBody | CommandRefused,
            "description": "a bad body or `Idempotency-Key` header (FastAPI's format); args"
            " the device's class does not take, or an `Idempotency-Key` reused for another"
            " request (`outcome`: `bad_request`)",
        },
        **_COMMAND_FAILURES,
    },
)
async def device_command(
    device_id: str,
    body: CommandBody,
    commands: CommandsDep,
    principal: PlatformDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A signed command (`unlock`, `open_barrier`, `open_compartment`) with the args of the
    device's profile; answers like the unlock endpoint."""
    result = await commands.execute(
        principal, device_id, body.action, body.args, idempotency_key=idempotency_key
    )
    return answer(result)
