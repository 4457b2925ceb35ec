"""Grafana dashboards as code: writes plain dashboard JSON and the provisioning files.

    python dashboards/grafana/generate.py            # writes into dashboards/grafana/provisioning
    python dashboards/grafana/generate.py --out DIR  # elsewhere

Every query is InfluxQL over the layout of docs/influxdb.md (measurement = device class; tags
``community``, ``building``, ``device``; fields = readings). The same dashboards serve
InfluxDB 1.x (native InfluxQL) and 2.x (InfluxQL through the v1 compatibility API, with a DBRP
mapping of the bucket): each dashboard has a ``datasource`` variable, and the provisioning file
declares one data source of each kind (uids ``courtyard-influxdb-v1`` and
``courtyard-influxdb-v2``).
"""

# The queries are InfluxQL constants, not SQL, and read best one per line:
# ruff: noqa: S608, E501
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS_V1 = "courtyard-influxdb-v1"
DS_V2 = "courtyard-influxdb-v2"
DS = {"type": "influxdb", "uid": "${datasource}"}
COMMUNITY = '"community" =~ /^$community$/'
BUILDING = '"building" =~ /^$building$/'
SCHEMA_VERSION = 39


# -- panels ------------------------------------------------------------------------------------


def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str = "") -> dict[str, Any]:
    t: dict[str, Any] = {
        "refId": ref,
        "datasource": DS,
        "query": query,
        "rawQuery": True,
        "resultFormat": fmt,
    }
    if alias:
        t["alias"] = alias
    return t


def panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    w: int = 12,
    h: int = 8,
    unit: str = "",
    description: str = "",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "gridPos": {"x": 0, "y": 0, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": options or {},
    }
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "spanNulls": True}
    return p


def bars(title: str, query: str, unit: str, w: int = 12, description: str = "") -> dict[str, Any]:
    """A time series drawn as bars (one per day or hour)."""
    p = panel(
        "timeseries",
        title,
        [target(query, alias="$tag_building$tag_device")],
        w,
        9,
        unit,
        description,
    )
    p["fieldConfig"]["defaults"]["custom"] = {
        "drawStyle": "bars",
        "fillOpacity": 80,
        "stacking": {"mode": "normal"},
    }
    return p


def stat(title: str, query: str, unit: str = "", w: int = 6) -> dict[str, Any]:
    return panel(
        "stat",
        title,
        [target(query)],
        w,
        5,
        unit,
        options={"reduceOptions": {"calcs": ["lastNotNull"]}},
    )


def text(title: str, content: str, w: int = 24, h: int = 4) -> dict[str, Any]:
    p = panel("text", title, [], w, h)
    del p["datasource"], p["targets"]
    p["options"] = {"mode": "markdown", "content": content}
    return p


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids 1..n and grid positions, left to right, then down (24 columns)."""
    x = y = row_h = 0
    for i, p in enumerate(panels, 1):
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        g["x"], g["y"] = x, y
        x += g["w"]
        row_h = max(row_h, g["h"])
        p["id"] = i
    return panels


# -- variables ---------------------------------------------------------------------------------


def variables(building: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "InfluxDB",
            "query": "influxdb",
            "current": {"text": DS_V1, "value": DS_V1},
            "hide": 0,
        },
        _query_var("community", 'SHOW TAG VALUES WITH KEY = "community"'),
    ]
    if building:
        out.append(
            _query_var(
                "building", f'SHOW TAG VALUES FROM "meter" WITH KEY = "building" WHERE {COMMUNITY}'
            )
        )
    return out


def _query_var(name: str, query: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": name.capitalize(),
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "hide": 0,
    }


def dashboard(
    uid: str,
    title: str,
    panels: list[dict[str, Any]],
    *,
    building: bool = False,
    span: str = "now-24h",
    description: str = "",
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["courtyard"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": span, "to": "now"},
        "templating": {"list": variables(building)},
        "annotations": {"list": []},
        "panels": layout(panels),
    }


# -- the dashboards ----------------------------------------------------------------------------


def _last_by_device(measurement: str, field: str, alias: str) -> str:
    return (
        f'SELECT last("{field}") AS "{alias}" FROM "{measurement}"'
        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY "device"'
    )


def overview() -> dict[str, Any]:
    return dashboard(
        "courtyard-overview",
        "Courtyard: community overview",
        [
            stat(
                "Electric power now",
                f'SELECT sum("w") FROM ({_last_by_device("meter", "power_w", "w")})',
                "watt",
            ),
            stat(
                "Free parking spaces",
                f'SELECT sum("free") FROM ({_last_by_device("parking", "free_spaces", "free")})',
            ),
            stat(
                "Free locker compartments",
                f'SELECT sum("free") FROM ({_last_by_device("locker", "free_compartments", "free")})',
            ),
            stat(
                "Doors open now",
                f'SELECT count("open") FROM ({_last_by_device("access", "door_open", "open")}) WHERE "open" = true',
            ),
            panel(
                "timeseries",
                "Electric power by building",
                [
                    target(
                        'SELECT sum("w") FROM (SELECT mean("power_w") AS "w" FROM "meter"'
                        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY time($__interval), "device", "building")'
                        ' WHERE $timeFilter GROUP BY time($__interval), "building"',
                        alias="$tag_building",
                    )
                ],
                12,
                9,
                "watt",
            ),
            panel(
                "timeseries",
                "Parking occupancy",
                [
                    target(
                        'SELECT last("total_spaces") - last("free_spaces") AS "occupied" FROM "parking"'
                        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY time($__interval), "device" fill(previous)',
                        alias="$tag_device",
                    )
                ],
                12,
                9,
            ),
            panel(
                "table",
                "Batteries (lowest first)",
                [
                    target(
                        'SELECT last("battery_pct") AS "battery_pct" FROM "access", "parking", "meter", "locker"'
                        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY "device"',
                        fmt="table",
                    )
                ],
                24,
                9,
                "percent",
                options={"sortBy": [{"displayName": "battery_pct", "desc": False}]},
            ),
        ],
        description="Power, parking, lockers, doors and batteries of the selected communities.",
    )


def _daily(field: str) -> str:
    """Use per day and building: each meter's counter at the end of a day minus the day before."""
    return (
        f'SELECT sum("used") FROM (SELECT non_negative_difference(last("{field}")) AS "used"'
        f' FROM "meter" WHERE {COMMUNITY} AND {BUILDING} AND $timeFilter'
        ' GROUP BY time(1d), "device", "building") WHERE $timeFilter GROUP BY time(1d), "building"'
    )


def energy() -> dict[str, Any]:
    return dashboard(
        "courtyard-energy",
        "Courtyard: energy by building",
        [
            bars("Electricity per building per day", _daily("energy_kwh"), "kwatth"),
            bars("Water and gas per building per day", _daily("volume_m3"), "m3"),
            bars(
                "Electricity per meter per day",
                'SELECT non_negative_difference(last("energy_kwh")) FROM "meter"'
                f' WHERE {COMMUNITY} AND {BUILDING} AND $timeFilter GROUP BY time(1d), "device"',
                "kwatth",
                24,
            ),
            panel(
                "timeseries",
                "Electric power by building",
                [
                    target(
                        'SELECT sum("w") FROM (SELECT mean("power_w") AS "w" FROM "meter"'
                        f" WHERE {COMMUNITY} AND {BUILDING} AND $timeFilter"
                        ' GROUP BY time($__interval), "device", "building")'
                        ' WHERE $timeFilter GROUP BY time($__interval), "building"',
                        alias="$tag_building",
                    )
                ],
                24,
                9,
                "watt",
            ),
        ],
        building=True,
        span="now-7d",
        description="A day's use is the counter at its end minus the day before's (UTC days).",
    )


def parking() -> dict[str, Any]:
    return dashboard(
        "courtyard-parking",
        "Courtyard: parking occupancy",
        [
            stat(
                "Free spaces now",
                f'SELECT sum("free") FROM ({_last_by_device("parking", "free_spaces", "free")})',
                w=8,
            ),
            stat(
                "Occupied space sensors",
                f'SELECT count("occ") FROM ({_last_by_device("parking", "occupied", "occ")}) WHERE "occ" = true',
                w=8,
            ),
            stat(
                "Barriers open",
                f'SELECT count("open") FROM ({_last_by_device("parking", "barrier_open", "open")}) WHERE "open" = true',
                w=8,
            ),
            panel(
                "timeseries",
                "Occupied spaces per lot",
                [
                    target(
                        'SELECT last("total_spaces") - last("free_spaces") AS "occupied" FROM "parking"'
                        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY time($__interval), "device" fill(previous)',
                        alias="$tag_device",
                    )
                ],
                24,
                10,
            ),
        ],
    )


def access() -> dict[str, Any]:
    def per_hour(locked: str) -> str:
        return (
            'SELECT count("door_open") FROM "access" WHERE "door_open" = true'
            f' AND "locked" = {locked} AND {COMMUNITY} AND $timeFilter'
            ' GROUP BY time(1h), "device" fill(0)'
        )

    return dashboard(
        "courtyard-access",
        "Courtyard: access events per hour",
        [
            bars(
                "Openings with the lock released (access granted) per hour",
                per_hour("false"),
                "short",
            ),
            bars("Openings while locked (door forced) per hour", per_hour("true"), "short"),
            text(
                "Denied attempts",
                "A denied attempt leaves the door shut, so it has no trace in the telemetry that "
                "reaches InfluxDB. Denied attempts are in the gateway's events "
                "(`GET /api/v1/events`, the console's Security page and the webhooks).",
            ),
        ],
        span="now-2d",
        description="From door telemetry: an opening is a point with door_open = true; it is "
        "forced when the lock was still engaged (locked = true).",
    )


def lockers() -> dict[str, Any]:
    return dashboard(
        "courtyard-lockers",
        "Courtyard: parcel lockers",
        [
            stat(
                "Free compartments now",
                f'SELECT sum("free") FROM ({_last_by_device("locker", "free_compartments", "free")})',
                w=12,
            ),
            stat(
                "Compartments in use now",
                'SELECT sum("used") FROM (SELECT last("total_compartments") - last("free_compartments")'
                f' AS "used" FROM "locker" WHERE {COMMUNITY} AND $timeFilter GROUP BY "device")',
                w=12,
            ),
            panel(
                "timeseries",
                "Compartments free and in use per bank",
                [
                    target(
                        'SELECT last("free_compartments") AS "free", last("total_compartments")'
                        ' - last("free_compartments") AS "in_use" FROM "locker"'
                        f' WHERE {COMMUNITY} AND $timeFilter GROUP BY time($__interval), "device" fill(previous)',
                        alias="$tag_device $col",
                    )
                ],
                24,
                10,
            ),
        ],
    )


DASHBOARDS = {
    "overview": overview,
    "energy": energy,
    "parking": parking,
    "access": access,
    "lockers": lockers,
}


# -- provisioning --------------------------------------------------------------------------------

DATASOURCES_YAML = f"""# Courtyard: InfluxDB data sources for Grafana (generated by dashboards/grafana/generate.py).
# Set the environment of the Grafana server: INFLUX_URL, INFLUX_DB (1.x database, or the
# database name mapped to the 2.x bucket), INFLUX_USER / INFLUX_PASSWORD (1.x, optional),
# INFLUX_TOKEN (2.x). Delete the data source you do not use.
apiVersion: 1
datasources:
  - name: Courtyard InfluxDB 1.x
    uid: {DS_V1}
    type: influxdb
    access: proxy
    url: $INFLUX_URL
    user: $INFLUX_USER
    jsonData:
      dbName: $INFLUX_DB
      httpMode: GET
    secureJsonData:
      password: $INFLUX_PASSWORD
    isDefault: true
    editable: false
  - name: Courtyard InfluxDB 2.x (InfluxQL)
    uid: {DS_V2}
    type: influxdb
    access: proxy
    url: $INFLUX_URL
    jsonData:
      dbName: $INFLUX_DB
      httpMode: GET
      httpHeaderName1: Authorization
    secureJsonData:
      httpHeaderValue1: Token $INFLUX_TOKEN
    editable: false
"""

DASHBOARDS_YAML = """# Courtyard: dashboard provider for Grafana (generated by dashboards/grafana/generate.py).
apiVersion: 1
providers:
  - name: courtyard
    folder: Courtyard
    type: file
    disableDeletion: false
    allowUiUpdates: false
    options:
      path: /etc/grafana/provisioning/dashboards/courtyard
      foldersFromFilesStructure: false
"""


def write(out: Path) -> list[Path]:
    """Write the provisioning tree under ``out``; the paths written."""
    written = []
    folder = out / "dashboards" / "courtyard"
    folder.mkdir(parents=True, exist_ok=True)
    (out / "datasources").mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(build(), indent=2) + "\n")
        written.append(path)
    for path, content in (
        (out / "datasources" / "courtyard.yaml", DATASOURCES_YAML),
        (out / "dashboards" / "courtyard.yaml", DASHBOARDS_YAML),
    ):
        path.write_text(content)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "provisioning")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
