"""Every InfluxQL query of the generated Grafana dashboards runs against the real influxd of
the tests and returns the data written there with the gateway's own line-protocol encoder
(the layout of docs/influxdb.md)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest

from dashboards.grafana import generate
from gateway.sinks.lineproto import encode, payload
from gateway.store.reader import TelemetryRow
from tests.support.influx import InfluxdServer

pytestmark = pytest.mark.integration

DAY = 86_400_000
HOUR = 3_600_000
DAY0 = (int(time.time() * 1000) // DAY - 3) * DAY  # three whole UTC days ago, midnight
SPAN = (DAY0 - HOUR, DAY0 + 3 * DAY)

ENERGY = {  # meter -> (building, kWh at noon of day 0, 1, 2)
    "m-b1-0101": ("b1", [100.0, 110.0, 125.0]),
    "m-b1-0102": ("b1", [50.0, 52.0, 60.0]),
    "m-b2-0101": ("b2", [10.0, 30.0, 31.0]),
}
H = DAY0 + 2 * DAY + 10 * HOUR  # the hour of the door activity, day 2


def rows() -> list[TelemetryRow]:
    out: list[tuple[str, str, str, int, dict[str, Any]]] = []
    for device, (building, kwh) in ENERGY.items():
        for day, value in enumerate(kwh):
            out.append(
                (
                    device,
                    "meter",
                    building,
                    DAY0 + day * DAY + 12 * HOUR,
                    {"energy_kwh": value, "power_w": 100.0 * (day + 1), "voltage_v": 230.0},
                )
            )
    for day, m3 in enumerate([1.0, 1.5, 2.5]):
        out.append(
            (
                "w-b1-0101",
                "meter",
                "b1",
                DAY0 + day * DAY + 12 * HOUR,
                {"volume_m3": m3, "flow_m3h": 0.0, "battery_pct": 90},
            )
        )
    d2 = DAY0 + 2 * DAY
    out += [
        ("lot-1", "parking", "", d2 + HOUR, {"free_spaces": 30, "total_spaces": 40}),
        ("lot-1", "parking", "", d2 + 2 * HOUR, {"free_spaces": 25, "total_spaces": 40}),
        ("p-001", "parking", "", d2 + HOUR, {"occupied": True, "battery_pct": 80}),
        ("p-002", "parking", "", d2 + HOUR, {"occupied": False, "battery_pct": 12}),
        ("barrier-1", "parking", "", d2 + HOUR, {"barrier_open": True}),
        ("barrier-2", "parking", "", d2 + HOUR, {"barrier_open": False}),
        ("locker-1", "locker", "", d2 + HOUR, {"free_compartments": 20, "total_compartments": 24}),
        (
            "locker-1",
            "locker",
            "",
            d2 + 3 * HOUR,
            {"free_compartments": 18, "total_compartments": 24},
        ),
    ]
    for i in range(3):  # three openings with the lock released, each followed by a close
        t = H + i * 60_000
        out.append(
            ("gate-north", "access", "", t, {"door_open": True, "locked": False, "battery_pct": 70})
        )
        out.append(
            (
                "gate-north",
                "access",
                "",
                t + 10_000,
                {"door_open": False, "locked": True, "battery_pct": 70},
            )
        )
    out.append(
        (
            "gate-north",
            "access",
            "",
            H + 20 * 60_000,
            {"door_open": True, "locked": True, "battery_pct": 70},
        )
    )
    for i in range(2):  # forced twice at the b1 entrance, an hour later
        out.append(
            (
                "b1-entrance",
                "access",
                "b1",
                H + HOUR + i * 60_000,
                {"door_open": True, "locked": True, "battery_pct": 55},
            )
        )
    return [
        TelemetryRow(i, device, "c1", building, cls, ts, orjson.dumps(body).decode())
        for i, (device, cls, building, ts, body) in enumerate(out, 1)
    ]


def grafana_macros(query: str, community: str = ".*") -> str:
    """What Grafana substitutes before sending a query."""
    return (
        query.replace("$timeFilter", f"time >= {SPAN[0]}ms AND time <= {SPAN[1]}ms")
        .replace("$__interval", "1h")
        .replace("$community", community)
        .replace("$building", ".*")
    )


@pytest.fixture(scope="module")
def db(influxd_v1: InfluxdServer) -> str:
    name = influxd_v1.create_database("grafana_dashboards")
    encoded = encode(rows())
    assert not encoded.skipped and encoded.dropped_fields == 0
    r = httpx.post(
        f"{influxd_v1.url}/write",
        params={"db": name, "precision": "ms"},
        content=payload(encoded.lines),
        timeout=30,
    )
    assert r.status_code == 204, r.text
    return name


def series(server: InfluxdServer, db: str, query: str) -> list[dict[str, Any]]:
    """Run one query as Grafana does (GET-like form, epoch milliseconds)."""
    r = httpx.post(f"{server.url}/query", data={"q": query, "db": db, "epoch": "ms"}, timeout=30)
    r.raise_for_status()
    result = r.json()["results"][0]
    assert "error" not in result, (query, result["error"])
    out: list[dict[str, Any]] = result.get("series", [])
    return out


def panel_queries() -> dict[str, list[str]]:
    """'<dashboard> / <panel title>' -> its queries."""
    out: dict[str, list[str]] = {}
    for name, build in generate.DASHBOARDS.items():
        for p in build()["panels"]:
            if p.get("targets"):
                out[f"{name} / {p['title']}"] = [t["query"] for t in p["targets"]]
    return out


def values(
    server: InfluxdServer, db: str, key: str, community: str = ".*"
) -> dict[str, list[list[Any]]]:
    """tag values (joined) -> non-null rows of the panel's first query."""
    (query,) = panel_queries()[key]
    out: dict[str, list[list[Any]]] = defaultdict(list)
    for s in series(server, db, grafana_macros(query, community)):
        tag = ",".join(f"{v}" for v in (s.get("tags") or {}).values())
        out[tag] += [row for row in s["values"] if row[1] is not None]
    return dict(out)


@pytest.mark.parametrize("key", list(panel_queries()))
def test_every_panel_query_runs_and_returns_data(
    influxd_v1: InfluxdServer, db: str, key: str
) -> None:
    for query in panel_queries()[key]:
        got = series(influxd_v1, db, grafana_macros(query))
        assert got and any(row[1] is not None for s in got for row in s["values"]), (key, query)
        # the community variable filters: another community sees nothing
        assert series(influxd_v1, db, grafana_macros(query, "c9")) == []


def test_variable_queries(influxd_v1: InfluxdServer, db: str) -> None:
    found = {}
    for v in generate.DASHBOARDS["energy"]()["templating"]["list"]:
        if v["type"] == "query":
            rows_ = series(influxd_v1, db, v["query"].replace("$community", ".*"))
            found[v["name"]] = {r[1] for s in rows_ for r in s["values"]}
    assert found == {"community": {"c1"}, "building": {"b1", "b2"}}


def test_energy_per_building_per_day(influxd_v1: InfluxdServer, db: str) -> None:
    got = values(influxd_v1, db, "energy / Electricity per building per day")
    assert {b: [(ts, v) for ts, v in r] for b, r in got.items()} == {
        "b1": [(DAY0 + DAY, 12.0), (DAY0 + 2 * DAY, 23.0)],
        "b2": [(DAY0 + DAY, 20.0), (DAY0 + 2 * DAY, 1.0)],
    }
    per_meter = values(influxd_v1, db, "energy / Electricity per meter per day")
    assert [v for _, v in per_meter["m-b2-0101"]] == [20.0, 1.0]
    water = values(influxd_v1, db, "energy / Water and gas per building per day")
    assert [v for _, v in water["b1"]] == [0.5, 1.0]


def test_access_events_per_hour(influxd_v1: InfluxdServer, db: str) -> None:
    granted = values(
        influxd_v1, db, "access / Openings with the lock released (access granted) per hour"
    )
    forced = values(influxd_v1, db, "access / Openings while locked (door forced) per hour")
    nonzero = lambda rows_: [(ts, v) for ts, v in rows_ if v]  # noqa: E731
    assert nonzero(granted["gate-north"]) == [(H, 3)]
    assert nonzero(granted.get("b1-entrance", [])) == []
    assert nonzero(forced["gate-north"]) == [(H, 1)]
    assert nonzero(forced["b1-entrance"]) == [(H + HOUR, 2)]


def test_current_state_panels(influxd_v1: InfluxdServer, db: str) -> None:
    def one(key: str) -> Any:
        (rows_,) = values(influxd_v1, db, key).values()
        return rows_[-1][1]

    assert one("overview / Electric power now") == 900.0  # 3 meters at 300 W on day 2
    assert one("overview / Free parking spaces") == 25
    assert one("overview / Free locker compartments") == 18
    assert one("overview / Doors open now") == 2  # gate-north forced last, b1-entrance forced
    assert one("parking / Occupied space sensors") == 1
    assert one("parking / Barriers open") == 1
    assert one("lockers / Compartments in use now") == 6
    occupancy = values(influxd_v1, db, "parking / Occupied spaces per lot")["lot-1"]
    assert occupancy[-1][1] == 15
    batteries = series(
        influxd_v1, db, grafana_macros(panel_queries()["overview / Batteries (lowest first)"][0])
    )
    by_device = {s["tags"]["device"]: s["values"][0][1] for s in batteries}
    assert by_device["p-002"] == 12 and by_device["b1-entrance"] == 55
