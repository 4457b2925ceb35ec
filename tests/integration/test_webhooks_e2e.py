"""Webhooks and the live stream end to end: an outage of the receiver, ``kill -9`` of the
gateway with undelivered webhooks and active alerts, and the SSE stream with resume."""

from __future__ import annotations

import itertools
import json
import time
from types import SimpleNamespace

import httpx
import pytest

from gateway.api.deps import SESSION_COOKIE, issue_session
from gateway.config import load_settings
from tests.support.community import config, registry
from tests.support.wait import wait_for
from tests.support.webhook_receiver import Receiver

SEQ = itertools.count(1)  # (ts, seq) is a message's identity: two events in 1 ms differ


@pytest.fixture
def receiver():
    r = Receiver(strict_time=True)
    yield r
    r.close()


def ev(publisher, device_id, name, **attrs):
    body = {"ts": int(time.time() * 1000), "seq": next(SEQ), "event": name, **attrs}
    publisher.publish(f"community/c1/access/{device_id}/event", json.dumps(body))


def test_outage_then_kill9_nothing_lost_nothing_raised_twice(
    mosquitto, gateway_factory, receiver, publisher
):
    receiver.respond = lambda: (503, {"Retry-After": "1"})
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=registry(6), extra=config(receiver.url))
    gw.start()
    for i in range(3):
        ev(publisher, f"door-{i:03d}", "door_forced")
    ev(publisher, "door-000", "door_closed")  # raised, then cleared: both must arrive
    depth = wait_for(
        lambda: (gw.get("/api/v1/webhooks").json()["endpoints"][0]["depth"] >= 4) or None,
        what="webhooks queued while the receiver is down",
    )
    assert depth
    wait_for(lambda: len(receiver.attempts) >= 2, what="failed attempts")
    assert receiver.received == []
    gw.kill9()
    ev(publisher, "door-003", "door_forced")  # while the gateway is down: queued by the broker
    receiver.respond = lambda: (200, {})
    gw.start()
    wait_for(lambda: len(receiver.of_type("alert.raised")) >= 4, what="every alert.raised")
    wait_for(lambda: len(receiver.of_type("alert.cleared")) >= 1, what="alert.cleared")
    time.sleep(1.5)  # anything raised twice would show up by now
    raised = [r["data"]["device"] for r in receiver.of_type("alert.raised")]
    assert sorted(raised) == ["door-000", "door-001", "door-002", "door-003"]
    # in order per endpoint: the webhooks queued before the crash come first, as queued
    kinds = [(r["type"], r["data"]["device"]) for r in receiver.received]
    assert kinds[:4] == [
        ("alert.raised", "door-000"),
        ("alert.raised", "door-001"),
        ("alert.raised", "door-002"),
        ("alert.cleared", "door-000"),
    ]
    ids = [r["id"] for r in receiver.received]
    assert len(ids) == len(set(ids))
    assert set(receiver.attempts) == set(ids)  # every retried id is one that arrived
    active = gw.get("/api/v1/alerts", status="active").json()["alerts"]
    assert sorted(a["device"] for a in active) == ["door-001", "door-002", "door-003"]
    assert receiver.bad_signatures == 0
    stats = gw.get("/api/v1/webhooks").json()["endpoints"][0]
    assert stats["depth"] == 0 and stats["failing"] is False
    # acknowledge through the API: one alert.acknowledged webhook
    alert_id = active[0]["id"]
    r = httpx.post(
        f"{gw.api}/api/v1/alerts/{alert_id}/ack",
        headers={"Authorization": f"Bearer {gw.key}"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    wait_for(lambda: receiver.of_type("alert.acknowledged"), what="alert.acknowledged")
    assert httpx.post(f"{gw.api}/api/v1/alerts/{alert_id}/ack", timeout=10).status_code == 401
    r = httpx.post(
        f"{gw.api}/api/v1/alerts/999999/ack",
        headers={"Authorization": f"Bearer {gw.key}"},
        timeout=10,
    )
    assert r.status_code == 404


def read_sse(response, want, timeout=15.0):
    """Read SSE items (dicts with id/event/data) until ``want(items)`` is true."""
    items: list[dict[str, str]] = []
    item: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if item:
                items.append(item)
                item = {}
                if want(items):
                    return items
            continue
        key, _, value = line.partition(":")
        item[key] = value.strip()
        assert time.monotonic() < deadline, items
    raise AssertionError(f"stream ended: {items}")


def test_event_stream_filters_resume_and_cookie(mosquitto, gateway_factory, receiver, publisher):
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=registry(3), extra=config(receiver.url))
    gw.start()
    url = f"{gw.api}/api/v1/events/stream"
    auth = {"Authorization": f"Bearer {gw.key}"}
    assert httpx.get(url, timeout=5).status_code == 401
    with httpx.stream("GET", url, headers=auth, timeout=20) as r:
        assert r.status_code == 200
        ev(publisher, "door-000", "door_forced")
        items = read_sse(r, lambda it: any(i.get("event") == "alert.raised" for i in it))
    assert [i["event"] for i in items] == ["event", "alert.raised"]
    assert json.loads(items[0]["data"])["event"] == "door_forced"
    assert json.loads(items[1]["data"])["data"]["rule"] == "door_forced"
    last = items[-1]["id"]
    # missed while away: a denial and the door closing; resume from Last-Event-ID
    ev(publisher, "door-000", "access_denied", credential="card:1", method="card")
    ev(publisher, "door-000", "door_closed")
    wait_for(lambda: receiver.of_type("alert.cleared"), what="cleared")
    with httpx.stream("GET", url, headers={**auth, "Last-Event-ID": last}, timeout=20) as r:
        items = read_sse(r, lambda it: any(i.get("event") == "alert.cleared" for i in it))
    assert [i["event"] for i in items] == ["event", "event", "alert.cleared"]
    assert [json.loads(i["data"]).get("event") for i in items[:2]] == [
        "access_denied",
        "door_closed",
    ]
    # severity filter: only critical alerts, no device events
    with httpx.stream(
        "GET",
        url,
        headers={**auth, "Last-Event-ID": "0-0"},
        params={"severity": "critical"},
        timeout=20,
    ) as r:
        items = read_sse(r, lambda it: len(it) >= 2)
    assert [i["event"] for i in items] == ["alert.raised", "alert.cleared"]
    # the console's session cookie, scoped to another community: sees nothing of c1
    settings = load_settings(gw.dir / "courtyard.toml", environ={})
    holder = SimpleNamespace(settings=settings)
    good = issue_session(holder, "console-user", None)  # type: ignore[arg-type]
    other = issue_session(holder, "c2-user", frozenset({"c2"}))  # type: ignore[arg-type]
    with httpx.stream(
        "GET", url, cookies={SESSION_COOKIE: good}, headers={"Last-Event-ID": "0-0"}, timeout=20
    ) as r:
        assert r.status_code == 200
        items = read_sse(r, lambda it: len(it) >= 3)
        assert items[0]["event"] == "event"
    bad = httpx.get(url, cookies={SESSION_COOKIE: good[:-2] + "xx"}, timeout=5)
    assert bad.status_code == 401
    with httpx.stream(
        "GET", url, cookies={SESSION_COOKIE: other}, headers={"Last-Event-ID": "0-0"}, timeout=5
    ) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            read_sse(r, lambda it: True)
