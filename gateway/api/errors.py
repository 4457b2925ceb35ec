"""The answer to a request FastAPI could not validate: always a 422 with a JSON body, and for a
command (an unlock, a device command) an audit row too, as for every other attempt.

FastAPI's own answer echoes the offending input; ``{"seconds": NaN}`` or ``1e400`` then made the
answer itself fail (JSON has no NaN), a 500 with nothing audited."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.api.deps import any_principal, get_gateway
from gateway.audit import Outcome

_COMMAND = re.compile(r"^/api/v1/(?:doors/(?P<door>[^/]+)/unlock|devices/(?P<dev>[^/]+)/commands)$")


def _finite(value: Any) -> Any:
    """The value with every non-finite number as text, so that it can be JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _finite(jsonable_encoder(exc.errors()))
    match = _COMMAND.match(request.url.path)
    if match is not None:
        _audit(request, match.group("door") or match.group("dev") or "", errors)
    return JSONResponse({"detail": errors}, status_code=422)


def _audit(request: Request, device: str, errors: list[dict[str, Any]]) -> None:
    """The attempt's audit row: who (the token was checked before the body), which device,
    and why the request was refused."""
    gateway = get_gateway(request)
    try:
        principal = any_principal(request, gateway)  # authenticated before the body
    except HTTPException:
        return
    st = gateway.store.devices.get(device)
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    gateway.audit.record(
        principal=principal.name,
        principal_kind=principal.kind,
        credential=principal.credential,
        device=device[:64],
        action="unlock" if "/doors/" in request.url.path else "?",
        outcome=Outcome.BAD_REQUEST,
        community=st.community if st is not None and principal.may_see(st.community) else "",
        reason=f"invalid request: {where}: {first.get('msg', '')}"[:200],
    )
