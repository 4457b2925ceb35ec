"""``/api/v1/devices``: the registry with live state, and reading history."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from devices.profiles import PROFILES
from gateway.api.deps import GatewayDep, PlatformDep, visible_device
from gateway.api.models import (
    BAD_PARAMETER,
    PLATFORM_ONLY,
    UNAUTHORIZED,
    Device,
    DeviceList,
    Readings,
    errors,
    schema_only,
)
from gateway.store.journal import DeviceState
from gateway.store.queries import QueryError, parse_duration, parse_time

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
NO_DEVICE = "no such device (or outside this key's communities)"


def device_view(
    st: DeviceState,
    registered: dict[str, Any],
    discovered: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    profile = PROFILES.get(st.device_class)
    reg = registered.get(st.device)
    # a device of an adapter (CONTRACT.md 7.1): its binding, or what discovered it
    if reg is not None:
        adapter, source = reg.adapter, reg.source
    else:
        adapter, source = (discovered or {}).get(st.device, ("", ""))
    return {
        "id": st.device,
        "community": st.community,
        "class": st.device_class,
        "building": st.building,
        "registered": st.registered,
        "online": st.online,
        "last_seen": st.last_seen_ms,
        "state_since": st.state_ms,
        "expect_every_s": reg.expect_every_s if reg is not None else None,
        "adapter": adapter,
        "source": source,
        "latest": {
            name: {
                "value": value,
                "ts": ts,
                "unit": profile.unit(name) if profile else "",
            }
            for name, (value, ts) in sorted(st.latest.items())
        },
    }


@router.get(
    "",
    response_model=DeviceList,  # for the schema only: see schema_only
    responses=errors(e401=UNAUTHORIZED, e403=PLATFORM_ONLY),
)
async def list_devices(
    gateway: GatewayDep,
    principal: PlatformDep,
    community: str | None = None,
    device_class: str | None = Query(None, alias="class"),
    online: bool | None = None,
) -> Response:
    registered = gateway.registry.by_id()
    items = [
        device_view(st, registered, gateway.bindings.discovered)
        for st in sorted(gateway.store.devices.values(), key=lambda s: s.device)
        if principal.may_see(st.community)
        and (community is None or st.community == community)
        and (device_class is None or st.device_class == device_class)
        and (online is None or st.online is online)
    ]
    return schema_only({"devices": items, "count": len(items)})


@router.get(
    "/{device_id}",
    response_model=Device,
    response_model_exclude_unset=True,
    responses=errors(e401=UNAUTHORIZED, e403=PLATFORM_ONLY, e404=NO_DEVICE),
)
async def get_device(device_id: str, gateway: GatewayDep, principal: PlatformDep) -> dict[str, Any]:
    st = visible_device(gateway.store, principal, device_id)
    return device_view(st, gateway.registry.by_id(), gateway.bindings.discovered)


@router.get(
    "/{device_id}/readings",
    response_model=Readings,  # for the schema only: see schema_only
    responses=errors(
        e400=BAD_PARAMETER + "; without `field`, the device's fields",
        e401=UNAUTHORIZED,
        e403=PLATFORM_ONLY,
        e404=NO_DEVICE,
    ),
)
async def readings(
    device_id: str,
    gateway: GatewayDep,
    principal: PlatformDep,
    field: str | None = None,
    since: str | None = None,
    until: str | None = None,
    every: str | None = None,
    limit: int = 10_000,
    cursor: str | None = None,
) -> Response:
    st = visible_device(gateway.store, principal, device_id)
    if not field:
        known = ", ".join(sorted(st.latest)) or "none yet"
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"field is required; {device_id} reports: {known}"
        )
    profile = PROFILES.get(st.device_class)
    try:
        until_ms = parse_time(until, "until") if until else int(time.time() * 1000)
        since_ms = parse_time(since, "since") if since else until_ms - 86_400_000
        every_ms = parse_duration(every) if every else None
        if since_ms > until_ms:
            raise QueryError("since is after until")
        page = await run_in_threadpool(
            gateway.queries.readings,
            st.id,
            field,
            since=since_ms,
            until=until_ms,
            every_ms=every_ms,
            counter=profile is not None and profile.kind(field) == "counter",
            limit=limit,
            cursor=cursor,
        )
    except QueryError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return schema_only(
        {
            "device": device_id,
            "field": field,
            "unit": profile.unit(field) if profile else "",
            "points": page.items,
            "next_cursor": page.next_cursor,
        }
    )
