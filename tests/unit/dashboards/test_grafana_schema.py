"""Every generated Grafana dashboard is well-formed: the fields Grafana needs, unique ids,
panels inside the 24-column grid, every data source a provisioned uid or the dashboard's own
data-source variable, and the files on disk are what the generator writes today."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dashboards.grafana import generate

PROVISIONING = Path(generate.__file__).resolve().parent / "provisioning"
PANEL_TYPES = {"timeseries", "stat", "table", "text", "barchart", "gauge"}
TOP_FIELDS = {
    "uid": str,
    "title": str,
    "schemaVersion": int,
    "version": int,
    "panels": list,
    "templating": dict,
    "time": dict,
    "tags": list,
}


def provisioned_uids() -> set[str]:
    text = (PROVISIONING / "datasources" / "courtyard.yaml").read_text()
    return set(re.findall(r"^\s+uid: (\S+)$", text, re.M))


def check_dashboard(d: dict[str, Any], uids: set[str]) -> list[str]:
    """The problems of one dashboard (empty: none)."""
    problems = []
    for key, kind in TOP_FIELDS.items():
        if not isinstance(d.get(key), kind):
            problems.append(f"{key}: expected {kind.__name__}")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds_vars = {f"${{{n}}}" for n, v in variables.items() if v["type"] == "datasource"}
    if not d.get("panels"):
        problems.append("no panels")
    ids = [p.get("id") for p in d.get("panels", [])]
    if len(ids) != len(set(ids)) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids not unique integers: {ids}")
    for p in d.get("panels", []):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("type") not in PANEL_TYPES or not p.get("title"):
            problems.append(f"{where}: type or title")
        g = p.get("gridPos", {})
        if not (
            all(isinstance(g.get(k), int) for k in "xywh")
            and g["w"] > 0
            and g["h"] > 0
            and g["x"] >= 0
            and g["x"] + g["w"] <= 24
        ):
            problems.append(f"{where}: gridPos {g}")
        if p.get("type") == "text":
            continue
        sources = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
        for ds in sources:
            if not isinstance(ds, dict) or ds.get("type") != "influxdb":
                problems.append(f"{where}: datasource {ds}")
            elif ds.get("uid") not in uids | ds_vars:
                problems.append(f"{where}: unknown datasource uid {ds.get('uid')}")
        targets = p.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(refs) != len(set(refs)):
            problems.append(f"{where}: targets missing or refIds repeated")
        for t in targets:
            if not (t.get("rawQuery") is True and str(t.get("query", "")).startswith("SELECT")):
                problems.append(f"{where}: target {t.get('refId')} has no raw InfluxQL")
            for var in re.findall(r"\$(\w+)", t.get("query", "")):
                if var not in variables and var not in ("timeFilter", "__interval"):
                    problems.append(f"{where}: unknown variable ${var}")
    return problems


def all_dashboards() -> dict[str, dict[str, Any]]:
    return {name: build() for name, build in generate.DASHBOARDS.items()}


def test_the_five_dashboards_of_the_issue_exist() -> None:
    titles = " | ".join(d["title"] for d in all_dashboards().values()).lower()
    for topic in ("overview", "energy by building", "parking", "access events", "lockers"):
        assert topic in titles


@pytest.mark.parametrize("name", list(generate.DASHBOARDS))
def test_dashboard_is_valid(name: str) -> None:
    uids = provisioned_uids()
    assert uids == {generate.DS_V1, generate.DS_V2}
    d = generate.DASHBOARDS[name]()
    assert check_dashboard(d, uids) == []
    # and it is what is on disk (regenerate with: python dashboards/grafana/generate.py)
    on_disk = json.loads((PROVISIONING / "dashboards" / "courtyard" / f"{name}.json").read_text())
    assert on_disk == d


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in all_dashboards().values()]
    assert len(uids) == len(set(uids))


def test_the_check_finds_problems() -> None:
    d = generate.DASHBOARDS["energy"]()
    d["panels"][1]["id"] = d["panels"][0]["id"]
    d["panels"][0]["targets"][0]["datasource"] = {"type": "influxdb", "uid": "elsewhere"}
    d["panels"][2]["gridPos"]["w"] = 30
    d["panels"][3]["targets"][0]["query"] = 'SELECT 1 FROM "m" WHERE "x" = $nowhere'
    problems = "\n".join(check_dashboard(d, provisioned_uids()))
    for expected in ("ids not unique", "unknown datasource uid elsewhere", "gridPos", "$nowhere"):
        assert expected in problems


def test_provisioning_points_at_the_dashboards_folder(tmp_path: Path) -> None:
    written = generate.write(tmp_path)
    assert {p.name for p in written} >= {f"{n}.json" for n in generate.DASHBOARDS}
    provider = (tmp_path / "dashboards" / "courtyard.yaml").read_text()
    assert "path: /etc/grafana/provisioning/dashboards/courtyard" in provider
    for p in written:
        assert p.read_text() == (PROVISIONING / p.relative_to(tmp_path)).read_text()
