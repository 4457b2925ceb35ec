"""Security rules on a fake clock: forced doors, held doors, brute force, refused commands."""

from __future__ import annotations

import pytest

from tests.support.rules_harness import Harness

DOORS = [
    {"id": "gate-north", "community": "c1", "class": "access", "expect_every_s": 30},
    {"id": "gate-south", "community": "c1", "class": "access"},
]


@pytest.fixture
def h(tmp_path):
    h = Harness(tmp_path / "c.db", DOORS)
    yield h
    h.close()


def test_door_forced_raises_once_and_clears_when_the_door_closes(h):
    h.event("gate-north", "door_forced")
    h.event("gate-north", "door_forced")
    raised = h.notices("alert.raised")
    assert len(raised) == 1
    data = raised[0]["data"]
    assert (data["rule"], data["severity"], data["device"], data["status"]) == (
        "door_forced",
        "critical",
        "gate-north",
        "active",
    )
    assert data["community"] == "c1" and data["raised_at"].endswith("+00:00")
    assert h.alerting.alerts.get("gate-north", "door_forced").count == 2
    h.advance(3)
    h.event("gate-north", "door_closed")
    cleared = h.notices("alert.cleared")
    assert len(cleared) == 1 and cleared[0]["data"]["cleared_at"]
    assert h.active() == []


def test_held_open_inferred_after_60_s_and_reported_by_the_device(h):
    h.send("gate-north", "telemetry", door_open=True, locked=False)
    h.advance(59)
    assert h.notices("alert.raised") == []
    h.advance(2)
    raised = h.notices("alert.raised")
    assert [r["data"]["rule"] for r in raised] == ["door_held_open"]
    h.event("gate-north", "door_held_open", seconds=60)  # the device says so too: same alert
    assert len(h.notices("alert.raised")) == 1
    h.send("gate-north", "telemetry", door_open=False, locked=True)
    assert [n["data"]["rule"] for n in h.notices("alert.cleared")] == ["door_held_open"]
    h.event("gate-south", "door_held_open", seconds=45)
    assert h.active() == [("gate-south", "door_held_open")]


def test_five_denied_badges_in_60_s_raise_one_alert(h):
    for _ in range(4):
        h.event("gate-north", "access_denied", credential="card:1", method="card")
        h.advance(10)
    assert h.notices("alert.raised") == []
    for _ in range(6):  # the fifth within 60 s raises; more only count
        h.event("gate-north", "access_denied", credential="card:1", method="card")
        h.advance(1)
    raised = h.notices("alert.raised")
    assert len(raised) == 1
    assert raised[0]["data"]["rule"] == "access_brute_force"
    assert raised[0]["data"]["severity"] == "critical"


def test_denials_spread_over_more_than_60_s_raise_nothing(h):
    for _ in range(10):
        h.event("gate-south", "access_denied", credential="card:2", method="card")
        h.advance(16)
    assert [n["data"]["rule"] for n in h.notices("alert.raised")] == ["device_offline"]


@pytest.mark.parametrize("reason", ["bad_signature", "replayed"])
def test_refused_command_reports_raise_a_security_alert(h, reason):
    h.event("gate-north", "tamper", reason=reason, command_id="x")
    h.event("gate-north", "tamper", reason="enclosure_opened")
    rules = sorted(n["data"]["rule"] for n in h.notices("alert.raised"))
    assert rules == ["command_rejected", "tamper"]
    assert len(h.notices("ticket.opened")) == 1  # tamper is ticket-worthy, a refusal is not


def test_acknowledge_then_clear(h):
    h.event("gate-north", "door_forced")
    alert_id = h.notices("alert.raised")[0]["data"]["id"]
    a = h.engine.acknowledge(alert_id, "platform-key-0")
    assert a.status == "acknowledged"
    h.engine.acknowledge(alert_id, "platform-key-0")  # idempotent: one webhook
    assert len(h.notices("alert.acknowledged")) == 1
    h.event("gate-north", "door_closed")
    assert h.types() == ["alert.raised", "alert.acknowledged", "alert.cleared"]
    assert h.alerting.alerts.by_id(alert_id).status == "cleared"


def test_one_shot_faults_clear_after_a_quiet_hour(h):
    h.event("gate-north", "tamper", reason="enclosure_opened")
    h.advance(1800)
    h.event("gate-north", "tamper", reason="enclosure_opened")  # a repeat restarts the hour
    h.advance(3599)
    assert h.alerting.alerts.get("gate-north", "tamper") is not None
    h.advance(2)
    assert h.alerting.alerts.get("gate-north", "tamper") is None


def test_a_command_executed_after_the_answer_raises_a_critical_alert_that_clears_alone(h):
    st = h.store.devices["gate-north"]
    details = {"command_id": "c-late", "action": "unlock", "answered": "timeout"}
    h.alerting.command_fault(st, "command_late_ok", details)
    (raised,) = h.notices("alert.raised")
    data = raised["data"]
    assert (data["rule"], data["severity"], data["device"]) == (
        "command_late_ok",
        "critical",
        "gate-north",
    )
    assert h.alerting.alerts.get("gate-north", "command_late_ok").details == details
    assert h.notices("ticket.opened") == []
    h.advance(3601)  # an hour without a repeat
    assert [n["data"]["rule"] for n in h.notices("alert.cleared")] == ["command_late_ok"]
