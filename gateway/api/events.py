"""``/api/v1/events``: device events from the local store."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api.deps import PlatformDep, QueriesDep, StoreDep, visible_device
from gateway.api.models import (
    BAD_PARAMETER,
    PLATFORM_ONLY,
    UNAUTHORIZED,
    EventPage,
    errors,
    schema_only,
)
from gateway.store.queries import QueryError, parse_time

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.get(
    "",
    response_model=EventPage,  # for the schema only: see schema_only
    responses=errors(
        e400=BAD_PARAMETER,
        e401=UNAUTHORIZED,
        e403=PLATFORM_ONLY,
        e404="no such `device` (or outside this key's communities)",
    ),
)
async def list_events(
    store: StoreDep,
    queries: QueriesDep,
    principal: PlatformDep,
    device: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
    cursor: str | None = None,
) -> Response:
    if device is not None:
        ids: list[int] | None = [visible_device(store, principal, device).id]
    elif principal.communities is not None:
        ids = [st.id for st in store.devices.values() if principal.may_see(st.community)]
    else:
        ids = None
    try:
        until_ms = parse_time(until, "until") if until else int(time.time() * 1000) + 300_000
        since_ms = parse_time(since, "since") if since else 0
        page = await run_in_threadpool(
            queries.events,
            ids,
            since=since_ms,
            until=until_ms,
            limit=limit,
            cursor=cursor,
        )
    except QueryError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return schema_only({"events": page.items, "next_cursor": page.next_cursor})
