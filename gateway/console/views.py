"""The data behind each console page, read from the running gateway's store.

Functions here take the gateway and the signed-in principal and return plain dicts and lists
for the templates; they read, never write. History comes from the same queries as the REST API
(``gateway.queries``), so a chart and ``/api/v1/devices/{id}/readings`` always agree.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.auth import Principal
from gateway.service import Gateway
from gateway.store.journal import DeviceState

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "warning": 3, "info": 4}
ENERGY_FIELDS = ("energy_kwh", "volume_m3")


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(ms: int | None, now_ms: int) -> str:
    """``3 d 4 h``, ``12 min``, ``40 s``: how long ago."""
    if ms is None:
        return "never"
    s = max(0, (now_ms - ms) // 1000)
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float


def devices(gateway: Gateway, principal: Principal, cls: str | None = None) -> list[DeviceState]:
    return sorted(
        (
            st
            for st in gateway.store.devices.values()
            if principal.may_see(st.community) and (cls is None or st.device_class == cls)
        ),
        key=lambda s: s.device,
    )


def latest(st: DeviceState, name: str) -> Any:
    """The latest value of a field; whole numbers as ints (24 compartments, not 24.0)."""
    v = st.latest.get(name)
    if v is None:
        return None
    value = v[0]
    return int(value) if type(value) is float and value.is_integer() else value


def _alerting_lists(
    gateway: Gateway, principal: Principal
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    a = gateway.alerting
    alerts = [x.data() for x in a.alerts.list(None, principal.communities, 1000)]
    tickets = [t.data() for t in a.tickets.list("open", principal.communities, 1000)]
    return alerts, tickets


def open_alerts(gateway: Gateway, principal: Principal) -> list[dict[str, Any]]:
    """Active and acknowledged alerts, critical first, then newest first."""
    alerts, _ = _alerting_lists(gateway, principal)
    live = [x for x in alerts if x["status"] != "cleared"]
    live.sort(key=lambda x: x["raised_at"], reverse=True)
    live.sort(key=lambda x: (x["status"] != "active", SEVERITY_ORDER.get(x["severity"], 9)))
    return live


def security(gateway: Gateway, principal: Principal) -> dict[str, Any]:
    now = gateway.now_ms()
    alerts = open_alerts(gateway, principal)
    forced = {x["device"] for x in alerts if x["rule"] == "door_forced"}
    buildings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for st in devices(gateway, principal, "access"):
        if st.online is False:
            state = "offline"
        elif st.device in forced:
            state = "forced"
        elif latest(st, "door_open"):
            state = "open"
        else:
            state = "closed"
        buildings[st.building or "Community gates"].append(
            {"id": st.device, "state": state, "last_seen": age(st.last_seen_ms, now)}
        )
    recent = recent_events(gateway, [st.id for st in devices(gateway, principal)], now)
    for e in recent:
        e["time"] = iso(e["ts"])
    return {"alerts": alerts, "doors": dict(sorted(buildings.items())), "events": recent}


def recent_events(gateway: Gateway, ids: list[int], now: int, n: int = 50) -> list[Any]:
    """The newest ``n`` events, newest first: the last hour, else the last day."""
    last: deque[Any] = deque(maxlen=n)
    for window in (HOUR_MS, DAY_MS):
        last.clear()
        cursor: str | None = None
        while ids:
            page = gateway.queries.events(
                ids, since=now - window, until=now + 300_000, limit=10_000, cursor=cursor
            )
            last.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        if len(last) == n:
            break
    return list(reversed(last))


PLATE_EVENTS = ("vehicle_entered", "vehicle_exited")


def parking(gateway: Gateway, principal: Principal) -> dict[str, Any]:
    now = gateway.now_ms()
    lots = []
    sensors = []
    for st in devices(gateway, principal, "parking"):
        total, free = latest(st, "total_spaces"), latest(st, "free_spaces")
        if total is not None and free is not None:
            page = gateway.queries.readings(
                st.id,
                "free_spaces",
                since=now - DAY_MS,
                until=now,
                every_ms=HOUR_MS,
                counter=False,
                limit=100,
                cursor=None,
            )
            # the counter publishes on change: an hour without a reading keeps the last value
            by_hour = {p["ts"]: float(total) - float(p["value"]) for p in page.items}
            bars, last = [], 0.0
            for hour in range(now // HOUR_MS * HOUR_MS - 23 * HOUR_MS, now + 1, HOUR_MS):
                last = by_hour.get(hour, last)
                label = datetime.fromtimestamp(hour / 1000, UTC).strftime("%H:00")
                bars.append(Bar(label, round(last, 1)))
            lots.append(
                {
                    "id": st.device,
                    "total": int(total),
                    "occupied": int(total - free),
                    "free": int(free),
                    "bars": bars,
                }
            )
        elif latest(st, "occupied") is not None:
            sensors.append(st)
    vehicles_in = [
        {"id": s.device, "since": age(s.state_ms or s.last_seen_ms, now)}
        for s in sensors
        if latest(s, "occupied")
    ]
    overstays = [x for x in open_alerts(gateway, principal) if x["rule"] == "parking_overstay"]
    cameras = [st.id for st in devices(gateway, principal, "parking")]
    plates = [
        {
            "time": iso(e["ts"]),
            "camera": e["device"],
            "direction": "in" if e["event"] == "vehicle_entered" else "out",
            "plate": e["attrs"].get("plate") or "(no plate read)",
            "color": e["attrs"].get("plate_color", ""),
            "lane": e["attrs"].get("lane", ""),
            "picture": e["attrs"].get("picture", ""),
        }
        for e in recent_events(gateway, cameras, now)
        if e["event"] in PLATE_EVENTS
    ]
    return {
        "lots": lots,
        "vehicles_in": vehicles_in,
        "spaces": len(sensors),
        "overstays": overstays,
        "plates": plates,
    }


def daily_consumption(gateway: Gateway, st: DeviceState, field: str, days: int) -> list[Bar]:
    """Use per UTC day: the counter's last value of the day minus the day before's (the
    first reading of the period for the first day)."""
    now = gateway.now_ms()
    start = (now // DAY_MS - days + 1) * DAY_MS
    page = gateway.queries.readings(
        st.id,
        field,
        since=start - DAY_MS,
        until=now,
        every_ms=DAY_MS,
        counter=True,
        limit=days + 2,
        cursor=None,
    )
    first = gateway.queries.readings(
        st.id,
        field,
        since=start,
        until=now,
        every_ms=None,
        counter=True,
        limit=1,
        cursor=None,
    )
    prev = first.items[0]["value"] if first.items else None
    used: dict[int, float] = {}
    for p in page.items:
        if p["ts"] >= start and prev is not None:
            used[p["ts"]] = round(max(0.0, float(p["value"]) - float(prev)), 3)
        prev = p["value"]
    return [
        Bar(datetime.fromtimestamp(day / 1000, UTC).strftime("%m-%d"), used.get(day, 0.0))
        for day in range(start, now + 1, DAY_MS)
    ]


def energy(gateway: Gateway, principal: Principal, days: int = 7) -> dict[str, Any]:
    now = gateway.now_ms()
    meters = [st for st in devices(gateway, principal, "meter") if "energy_kwh" in st.latest]
    per_building: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    per_meter = []
    power: dict[str, float] = defaultdict(float)
    for st in meters:
        bars = daily_consumption(gateway, st, "energy_kwh", days)
        b = st.building or "-"
        for bar in bars:
            per_building[b][bar.label] += bar.value
        per_meter.append({"id": st.device, "building": b, "bars": bars})
        if st.online is not False and latest(st, "power_w") is not None:
            power[b] += float(latest(st, "power_w"))
    buildings = {
        b: [Bar(day, round(v, 3)) for day, v in sorted(days_.items())]
        for b, days_ in sorted(per_building.items())
    }
    offline = [
        {"id": st.device, "building": st.building, "last_seen": age(st.last_seen_ms, now)}
        for st in devices(gateway, principal, "meter")
        if st.online is False
    ]
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    return {
        "buildings": buildings,
        "meters": per_meter,
        "power": dict(sorted(power.items())),
        "offline": offline,
        "since": (today.fromordinal(today.toordinal() - days + 1)).isoformat(),
        "until": today.isoformat(),
    }


def energy_csv(
    gateway: Gateway, principal: Principal, since_ms: int, until_ms: int
) -> Iterator[str]:
    """Every meter counter reading of the period, one CSV line each, streamed page by page."""
    yield "device,community,building,field,ts_ms,time,value\r\n"
    for st in devices(gateway, principal, "meter"):
        for field in ENERGY_FIELDS:
            if field not in st.latest:
                continue
            cursor: str | None = None
            while True:
                page = gateway.queries.readings(
                    st.id,
                    field,
                    since=since_ms,
                    until=until_ms,
                    every_ms=None,
                    counter=True,
                    limit=10_000,
                    cursor=cursor,
                )
                for p in page.items:
                    yield (
                        f"{st.device},{st.community},{st.building},{field},{p['ts']},"
                        f"{iso(p['ts'])},{p['value']}\r\n"
                    )
                cursor = page.next_cursor
                if cursor is None:
                    break


def lockers(gateway: Gateway, principal: Principal) -> dict[str, Any]:
    now = gateway.now_ms()
    banks = []
    waiting: list[dict[str, Any]] = []
    for st in devices(gateway, principal, "locker"):
        total, free = latest(st, "total_compartments"), latest(st, "free_compartments")
        banks.append(
            {
                "id": st.device,
                "total": total,
                "free": free,
                "in_use": None if total is None or free is None else total - free,
                "online": st.online,
            }
        )
        held: dict[Any, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            page = gateway.queries.events(
                [st.id], since=now - 30 * DAY_MS, until=now + 300_000, limit=10_000, cursor=cursor
            )
            for e in page.items:
                comp = e["attrs"].get("compartment")
                if e["event"] == "parcel_deposited":
                    held[comp] = {
                        "bank": st.device,
                        "compartment": comp,
                        "ts": e["ts"],
                        "parcel": e["attrs"].get("parcel_id", ""),
                        "unit": e["attrs"].get("unit", ""),
                    }
                elif e["event"] == "parcel_picked_up":
                    held.pop(comp, None)
            cursor = page.next_cursor
            if cursor is None:
                break
        waiting += held.values()
    waiting.sort(key=lambda p: p["ts"])
    for p in waiting:
        p["waiting"] = age(p["ts"], now)
    return {"banks": banks, "parcels": waiting}


def devices_page(gateway: Gateway, principal: Principal) -> dict[str, Any]:
    now = gateway.now_ms()
    rows = [
        {
            "id": st.device,
            "class": st.device_class,
            "building": st.building,
            "online": st.online,
            "last_seen": age(st.last_seen_ms, now),
            "battery": latest(st, "battery_pct"),
        }
        for st in devices(gateway, principal)
    ]
    _, tickets = _alerting_lists(gateway, principal)
    for t in tickets:
        opened = datetime.fromisoformat(t["opened_at"].replace("Z", "+00:00"))
        t["age"] = age(int(opened.timestamp() * 1000), now)
    online = sum(1 for r in rows if r["online"])
    return {"devices": rows, "online": online, "tickets": tickets}


def now_ms() -> int:
    return int(time.time() * 1000)
