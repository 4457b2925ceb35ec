"""``POST /api/v1/residents/{sub}/revoke``: a platform key revokes a resident's tokens.

Every token of that ``sub`` in that community issued before the given time (default: now) is
refused from then on, including tokens already verified and remembered; tokens issued later
are accepted again (the resident's app signs in anew). Kept in the store: a restart forgets
nothing (:mod:`gateway.revocation`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from gateway.api.deps import GatewayDep, PlatformDep
from gateway.config.base import Ident

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/residents", tags=["residents"])

Sub = Annotated[str, Path(min_length=1, max_length=128)]


class RevokeBody(BaseModel):
    community: Ident
    # epoch ms; tokens issued (iat) before it are refused. Default: the moment of the call
    issued_before: int | None = Field(default=None, ge=0, le=2**53)


@router.post("/{sub}/revoke")
async def revoke(
    sub: Sub, body: RevokeBody, gateway: GatewayDep, principal: PlatformDep
) -> dict[str, Any]:
    """Revoke the resident ``sub`` of ``community``: `200 {"community", "sub",
    "revoked_before"}` (epoch ms in force: a later revocation of the same resident never moves
    it back). A community outside the key's scope, or unknown: `404`."""
    known = gateway.authenticator.communities
    if not principal.may_see(body.community) or (known and body.community not in known):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {body.community!r}")
    before = body.issued_before if body.issued_before is not None else gateway.now_ms()
    in_force = gateway.revocations.revoke_resident(body.community, sub, before, principal.name)
    log.info("resident tokens revoked in %s by %s", body.community, principal.name)
    return {"community": body.community, "sub": sub, "revoked_before": in_force}
