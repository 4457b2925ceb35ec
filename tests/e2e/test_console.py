"""The web console in a real headless Chromium against the real gateway process.

The module shares one site (Mosquitto, the gateway, a small simulated community); tests run in
file order: the Security test raises the alert that the screenshots then show.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Page, expect

from gateway.store.schema import TELEMETRY
from tests.e2e.conftest import OPERATOR_PASSWORD, SCREENSHOTS, Site, login
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

PAGES = {
    "security": "Security",
    "parking": "Parking",
    "energy": "Energy",
    "lockers": "Lockers",
    "devices": "Devices and tickets",
}


def api(site: Site, path: str, **params: object) -> httpx.Response:
    return site.gateway.get(path, **params)


# -- auth, without a browser -------------------------------------------------------------------


def test_console_needs_a_session(site: Site) -> None:
    base = site.gateway.api
    for name in PAGES:
        r = httpx.get(f"{base}/console/{name}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", name
    assert (
        httpx.get(f"{base}/console/energy.csv?since=2026-01-01&until=2026-01-02").status_code == 401
    )
    assert httpx.post(f"{base}/console/alerts/1/ack").status_code == 401
    assert httpx.get(f"{base}/console/login").status_code == 200
    assert httpx.get(f"{base}/console/static/console.css").status_code == 200
    # a stream without a Bearer header or a valid cookie is refused
    r = httpx.get(f"{base}/api/v1/events/stream", cookies={"courtyard_session": "x.y"})
    assert r.status_code == 401


def test_login_cookie_and_csrf(site: Site) -> None:
    base = site.gateway.api
    bad = httpx.post(f"{base}/console/login", data={"key": "not-the-key-at-all"})
    assert bad.status_code == 303 and "error" in bad.headers["location"]
    assert "set-cookie" not in bad.headers
    good = httpx.post(f"{base}/console/login", data={"key": site.gateway.key})
    assert good.status_code == 303 and good.headers["location"] == "/console/security"
    cookie = good.headers["set-cookie"].lower()
    assert "courtyard_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age=" in cookie and site.gateway.key.lower() not in cookie
    jar = {"courtyard_session": good.cookies["courtyard_session"]}
    with httpx.Client(base_url=base, cookies=jar) as c:
        assert c.get("/console/devices").status_code == 200
        # an acknowledgement without the session's CSRF token, or from elsewhere, is refused
        assert c.post("/console/alerts/1/ack").status_code == 403
        assert (
            c.post("/console/alerts/1/ack", headers={"X-CSRF-Token": "0" * 64}).status_code == 403
        )
        page = c.get("/console/security").text
        token = page.split('name="csrf-token" content="')[1].split('"')[0]
        r = c.post(
            "/console/alerts/1/ack",
            headers={"X-CSRF-Token": token, "Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        assert (
            c.post("/console/alerts/999999/ack", headers={"X-CSRF-Token": token}).status_code == 404
        )


def test_operator_account_signs_in(page: Page, site: Site) -> None:
    page.goto("/console/login")
    page.get_by_label("Operator name").fill("guard")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in as operator").click()
    expect(page.get_by_role("alert")).to_have_text("Those credentials were not accepted.")
    page.get_by_label("Operator name").fill("guard")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in as operator").click()
    page.wait_for_url("**/console/security")
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    page.get_by_role("button", name="Sign out operator:guard").click()  # the label names the user
    page.wait_for_url("**/console/login")
    page.goto("/console/devices")
    page.wait_for_url("**/console/login")


def test_repeated_wrong_passwords_are_throttled(site: Site) -> None:
    base = site.gateway.api
    form = {"operator": "intruder", "password": "guess"}
    for _ in range(5):
        assert httpx.post(f"{base}/console/login", data=form).status_code == 303
    r = httpx.post(f"{base}/console/login", data=form)
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    # the right key still signs in
    assert httpx.post(f"{base}/console/login", data={"key": site.gateway.key}).status_code == 303


# -- the browser -------------------------------------------------------------------------------


def test_login_and_see_the_simulated_devices(page: Page, site: Site) -> None:
    login(page, site.gateway.key)
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    wait_for(
        lambda: len(api(site, "/api/v1/devices").json()["devices"]) == len(site.community.devices),
        what="every simulated device known to the gateway",
    )
    page.goto("/console/devices")
    rows = page.locator("#devices tbody tr.device")
    expect(rows).to_have_count(len(site.community.devices))
    shown = set(rows.evaluate_all("rs => rs.map(r => r.dataset.id)"))
    assert shown == set(site.community.devices)
    expect(page.locator("tr[data-id='b1-entrance']")).to_contain_text("online")
    page.get_by_label("Filter devices").fill("locker")
    expect(page.locator("#devices tbody tr:not([hidden])")).to_have_count(1)


def test_door_forced_appears_live_and_is_acknowledged(page: Page, site: Site) -> None:
    login(page, site.gateway.key)
    expect(page.locator("#live")).to_have_text("live")
    door = site.community.devices["b1-entrance"]
    t0 = time.monotonic()
    door.force_door(close_after_s=30.0)  # type: ignore[attr-defined]
    feed_item = page.locator("#feed li.ev-door_forced").first
    expect(feed_item).to_be_visible(timeout=1000)
    alert = page.locator("#alerts li.alert.sev-critical", has_text="Door forced open").first
    expect(alert).to_be_visible(timeout=1000)
    assert time.monotonic() - t0 < 1.0, "the forced door took more than a second to show"
    expect(page.locator("#door-b1-entrance .state")).to_have_text("forced")
    # critical on top, and a browser notification for it
    expect(page.locator("#alerts li.alert").first).to_have_class("alert sev-critical st-active")
    notes = page.evaluate("window.__notes")
    assert any(
        n["title"] == "Critical: Door forced open" and n["body"] == "b1-entrance" for n in notes
    )

    alert_id = int(alert.get_attribute("data-id") or 0)
    alert.get_by_role("button", name=f"Acknowledge alert {alert_id}").click()
    expect(page.locator(f"#alerts li.alert[data-id='{alert_id}'] .status")).to_have_text(
        "acknowledged"
    )
    acked = api(site, "/api/v1/alerts", status="acknowledged").json()["alerts"]
    mine = [a for a in acked if a["id"] == alert_id]
    assert mine and mine[0]["rule"] == "door_forced" and mine[0]["device"] == "b1-entrance"
    assert mine[0]["acknowledged_by"].startswith("console:")
    assert alert_id not in [
        a["id"] for a in api(site, "/api/v1/alerts", status="active").json()["alerts"]
    ]


def test_energy_chart_has_bars_and_the_csv_matches_the_store(page: Page, site: Site) -> None:
    meters = [d for d in site.community.devices.values() if d.device_id.startswith("m-")]
    wait_for(
        lambda: all(
            len(
                api(site, f"/api/v1/devices/{m.device_id}/readings", field="energy_kwh").json()[
                    "points"
                ]
            )
            >= 2
            for m in meters
        ),
        what="two energy readings from every electricity meter",
    )
    login(page, site.gateway.key)
    page.goto("/console/energy")
    bars = page.locator("section[aria-labelledby='bld-h'] svg rect.bar")
    assert bars.count() >= 1
    heights = bars.evaluate_all("rs => rs.map(r => Number(r.getAttribute('height')))")
    assert max(heights) > 0, "the tallest bar has no height"
    assert page.locator("section[aria-labelledby='meter-h'] svg rect.bar").count() >= len(meters)

    until_ms = int(time.time() * 1000) - 2000
    today = datetime.now(UTC).date().isoformat()
    r = page.request.get(f"/console/energy.csv?since={today}&until={until_ms}")
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text())))
    got = sorted((x["device"], x["field"], int(x["ts_ms"]), float(x["value"])) for x in rows)
    day0 = int(datetime.fromisoformat(f"{today}T00:00:00+00:00").timestamp() * 1000)
    with sqlite3.connect(site.gateway.db) as db:
        want = sorted(
            (dev, field, ts, float(v))
            for field in ("energy_kwh", "volume_m3")
            for dev, ts, v in db.execute(
                "SELECT d.device, j.ts_ms, json_extract(j.body, ?) FROM journal j"
                " JOIN devices d ON d.id = j.device_id WHERE d.class = 'meter' AND j.kind = ?"
                " AND j.ts_ms BETWEEN ? AND ? AND json_type(j.body, ?) IN ('integer', 'real')",
                (f"$.{field}", TELEMETRY, day0, until_ms, f"$.{field}"),
            )
        )
    assert len(want) >= 2 * len(meters)
    assert got == want


def test_every_page_is_accessible_at_phone_width_and_screenshotted(page: Page, site: Site) -> None:
    login(page, site.gateway.key)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, title in PAGES.items():
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"/console/{name}")
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        assert page.get_by_role("heading", level=2).count() >= 1
        unlabelled = page.evaluate(
            """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select,'
                 + ' textarea, button')).filter(el => {
                 const label = el.labels && el.labels.length ? el.labels[0].textContent.trim() : '';
                 return !(label || el.getAttribute('aria-label') || el.textContent.trim());
               }).map(el => el.outerHTML)"""
        )
        assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
        if name == "parking":
            expect(page.locator(".lot-occupied")).to_have_count(1)
        if name == "lockers":
            expect(page.locator("section[aria-labelledby='banks-h'] tbody tr")).to_have_count(1)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"/console/{name}")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"{name}: {overflow} px wide at a 390 px phone width"
    page.goto("/console/login")
    page.screenshot(path=str(SCREENSHOTS / "login.png"))
