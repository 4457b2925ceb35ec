"""Alerts end to end: real Mosquitto, firmware stubs, the gateway process, a real receiver
verifying every Standard Webhooks signature."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from firmware_stubs.door import DoorController
from firmware_stubs.locker import LockerBank
from firmware_stubs.meter import WaterMeter
from tests.support.community import config, device, registry
from tests.support.wait import wait_for
from tests.support.webhook_receiver import Receiver

SEQ = itertools.count(1)  # (ts, seq) is a message's identity: two events in 1 ms differ


@pytest.fixture
def receiver():
    r = Receiver(strict_time=True)
    yield r
    r.close()


def ev(publisher, device_id, name, cls="access", **attrs):
    body = {"ts": int(time.time() * 1000), "seq": next(SEQ), "event": name, **attrs}
    publisher.publish(f"community/c1/{cls}/{device_id}/event", json.dumps(body))


def test_stub_door_forced_raises_a_signed_alert_webhook(mosquitto, gateway_factory, receiver):
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=registry(0, device("gate-north", "access", 2)),
        extra=config(receiver.url),
    )
    gw.start()
    door = DoorController(
        "gate-north",
        port=mosquitto.port,
        expect_every_s=2,
        mean_access_s=1e6,
        mean_exit_s=1e6,
        mean_intercom_s=1e6,
    )
    door.start()
    try:
        assert door.wait_connected(10)
        t0 = time.time()
        door.force_door(close_after_s=2.0)
        raised = wait_for(lambda: receiver.of_type("alert.raised"), what="alert.raised")
        data = raised[0]["data"]
        assert (data["device"], data["rule"], data["severity"], data["status"]) == (
            "gate-north",
            "door_forced",
            "critical",
            "active",
        )
        assert data["community"] == "c1" and data["raised_at"] and data["id"]
        print(f"door forced -> webhook: {(raised[0]['at'] - t0) * 1000:.1f} ms")
        cleared = wait_for(lambda: receiver.of_type("alert.cleared"), what="alert.cleared")
        assert cleared[0]["data"]["id"] == data["id"] and cleared[0]["data"]["cleared_at"]
        assert receiver.bad_signatures == 0
        alerts = gw.get("/api/v1/alerts", status="cleared").json()["alerts"]
        assert [a["rule"] for a in alerts] == ["door_forced"]
        metrics = gw.get("/metrics").text
        assert 'courtyard_alerts{state="cleared"} 1' in metrics
        assert 'courtyard_webhook_delivered_total{endpoint="1"} 2' in metrics
    finally:
        door.stop()


def test_silent_meter_one_ticket_ten_faults(mosquitto, gateway_factory, receiver):
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=registry(0, device("w-1", "meter", 1)),
        extra=config(receiver.url, "\n[rules.device_offline]\nclear_after_s = 1\n"),
    )
    gw.start()
    meter = WaterMeter("w-1", port=mosquitto.port, expect_every_s=1)
    meter.start()
    try:
        assert meter.wait_connected(10)
        time.sleep(1.5)
        for i in range(10):
            meter.go_silent()
            t0 = time.time()
            raised = wait_for(
                lambda n=i: len(receiver.of_type("alert.raised")) == n + 1 or None,
                what=f"offline #{i + 1}",
            )
            assert raised
            took = receiver.of_type("alert.raised")[-1]["at"] - t0
            assert 1.9 <= took <= 5.0, took  # 3 x 1 s after the last heartbeat
            meter.resume()
            wait_for(
                lambda n=i: len(receiver.of_type("alert.cleared")) == n + 1 or None,
                what=f"cleared #{i + 1}",
            )
            wait_for(
                lambda n=i: (
                    sum(1 for r in receiver.of_type("ticket.updated") if r["data"]["recovered"])
                    == n + 1
                    or None
                ),
                what="ticket updated with the recovery",
            )
        assert len(receiver.of_type("ticket.opened")) == 1
        assert {r["data"]["rule"] for r in receiver.of_type("alert.raised")} == {"device_offline"}
        tickets = gw.get("/api/v1/tickets", status="open").json()["tickets"]
        assert len(tickets) == 1 and tickets[0]["occurrences"] == 10
        assert tickets[0]["device"] == "w-1" and tickets[0]["title"]
        assert receiver.bad_signatures == 0
    finally:
        meter.stop()


def test_denied_badges_and_parcel_reminder(mosquitto, gateway_factory, receiver, publisher):
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=registry(2, device("locker-1", "locker")),
        extra=config(receiver.url, "\n[rules.parcel_reminder]\nafter_s = 2\nrepeat_s = 0\n"),
    )
    gw.start()
    for _ in range(4):
        ev(publisher, "door-000", "access_denied", credential="card:9", method="card")
    ev(publisher, "door-001", "access_denied", credential="card:9", method="card")
    time.sleep(1)
    assert receiver.of_type("alert.raised") == []
    for _ in range(4):  # five and more within 60 s at door-000
        ev(publisher, "door-000", "access_denied", credential="card:9", method="card")
    raised = wait_for(lambda: receiver.of_type("alert.raised"), what="brute force alert")
    assert raised[0]["data"]["rule"] == "access_brute_force"
    assert raised[0]["data"]["device"] == "door-000"

    locker = LockerBank("locker-1", port=mosquitto.port, mean_deposit_s=1e6, mean_pickup_s=1e6)
    locker.start()
    try:
        assert locker.wait_connected(10)
        compartment = locker.deposit(unit="b1-0101", parcel_id="P-42")
        reminder = wait_for(lambda: receiver.of_type("parcel.reminder"), what="reminder")
        assert reminder[0]["data"]["parcel_id"] == "P-42"
        assert reminder[0]["data"]["compartment"] == compartment
        time.sleep(3)
        assert len(receiver.of_type("parcel.reminder")) == 1
        assert len(receiver.of_type("alert.raised")) == 1  # still one security alert
        assert receiver.bad_signatures == 0
    finally:
        locker.stop()
