"""``POST /api/v1/ingest/{adapter}``: devices that push their vendor's format over HTTP
(CONTRACT.md 7.2), and ``GET /api/v1/pictures/{name}``: the pictures they pushed.

The ingest token comes as ``Authorization: Bearer``, as the password of HTTP Basic, or as
the ``token`` query parameter (cameras that can only be given a URL). It is checked before
the body is read; the body's size is checked from ``Content-Length`` before reading and
while reading. Neither the token nor the body is logged.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, Response

from gateway.adapters.pictures import MEDIA_TYPES
from gateway.adapters.push import Answer, PushRefused
from gateway.api.deps import GatewayDep, PlatformOrSessionDep, PushDep

router = APIRouter(tags=["ingest"])


def _token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return request.query_params.get("token", "")


def _response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.post("/api/v1/ingest/{adapter}", response_class=Response)
async def ingest(adapter: str, request: Request, push: PushDep) -> Response:
    """One push; answered after its journal commit (in the device's own reply format where it
    expects one), 401 bad token, 403 identity mismatch, 400 rejected body, 413 too large."""
    try:
        device = push.authenticate(adapter, _token(request))
        limit = push.max_body_bytes(device)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise push.too_large(adapter, limit)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise push.too_large(adapter, limit)
    except PushRefused as refused:
        return _response(refused.answer)
    answer = await push.push(device, request.headers.get("content-type", ""), bytes(body))
    return _response(answer)


@router.get("/api/v1/pictures/{name}", response_class=FileResponse)
async def picture(name: str, gateway: GatewayDep, principal: PlatformOrSessionDep) -> Response:
    """A picture a device pushed, to a caller who may see its community (404 otherwise)."""
    found = gateway.pictures.find(name)
    if found is None or not principal.may_see(found[0]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such picture")
    return FileResponse(
        found[1],
        media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "private, max-age=86400"},
    )
