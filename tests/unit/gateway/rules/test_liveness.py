"""Liveness on a fake clock: silence, last will, topology, hysteresis, tickets, restart."""

from __future__ import annotations

import pytest

from tests.support.rules_harness import Harness

DEVICES = [
    {"id": "w-1", "community": "c1", "class": "meter", "expect_every_s": 60},
    {"id": "bus-1", "community": "c1", "class": "meter", "expect_every_s": 10},
    *[
        {
            "id": f"m-{i}",
            "community": "c1",
            "class": "meter",
            "expect_every_s": 5,
            "parent": "bus-1",
        }
        for i in range(3)
    ],
]


@pytest.fixture
def h(tmp_path):
    h = Harness(tmp_path / "c.db", DEVICES)
    yield h
    h.close()


def offline_alerts(h, device=None):
    return [
        n
        for n in h.notices("alert.raised")
        if n["data"]["rule"] == "device_offline" and device in (None, n["data"]["device"])
    ]


def keep_alive(h, devices, seconds, every=1.0):
    for _ in range(int(seconds / every)):
        for d in devices:
            h.send(d, "telemetry", volume_m3=1.0)
        h.advance(every)


def test_silent_meter_one_ticket_after_three_intervals_and_recovery(h):
    kids = ["bus-1", "m-0", "m-1", "m-2"]
    h.send("w-1", "telemetry", volume_m3=1.0, flow_m3h=0.0)
    keep_alive(h, kids, 179)
    assert offline_alerts(h, "w-1") == []
    keep_alive(h, kids, 2)
    assert len(offline_alerts(h, "w-1")) == 1
    opened = h.notices("ticket.opened")
    assert len(opened) == 1
    assert opened[0]["data"]["device"] == "w-1" and opened[0]["data"]["status"] == "open"
    h.send("w-1", "telemetry", volume_m3=1.0)  # back: the clear waits out the hysteresis
    assert h.notices("alert.cleared") == []
    keep_alive(h, [*kids, "w-1"], 11)
    assert [n["data"]["device"] for n in h.notices("alert.cleared")] == ["w-1"]
    updated = h.notices("ticket.updated")
    assert updated[-1]["data"]["recovered"] is True


def test_the_same_fault_ten_times_yields_one_ticket(h):
    kids = ["bus-1", "m-0", "m-1", "m-2"]
    for _ in range(10):
        h.send("w-1", "telemetry", volume_m3=1.0)
        keep_alive(h, kids, 200, every=5)  # silent: offline
        h.send("w-1", "telemetry", volume_m3=1.0)
        keep_alive(h, [*kids, "w-1"], 20, every=5)  # back: cleared
    assert len(offline_alerts(h, "w-1")) == 10
    assert len(h.notices("alert.cleared")) == 10
    assert len(h.notices("ticket.opened")) == 1
    tickets = h.alerting.tickets.list(None, None)
    assert len(tickets) == 1 and tickets[0].occurrences == 10 and tickets[0].status == "open"
    keep_alive(h, [*kids, "w-1"], 24 * 3600 + 60, every=30)  # a day healthy: resolved
    assert [n["data"]["status"] for n in h.notices("ticket.resolved")] == ["resolved"]


def test_last_will_is_offline_at_once(h):
    h.send("w-1", "status", state="offline")
    assert len(offline_alerts(h, "w-1")) == 1


def test_flapping_device_keeps_one_alert(h):
    for _ in range(30):
        h.send("w-1", "status", state="offline")
        h.advance(2)
        h.send("w-1", "status", state="online")
        h.advance(2)
    assert len(offline_alerts(h, "w-1")) == 1
    assert [n for n in h.notices("alert.cleared") if n["data"]["device"] == "w-1"] == []
    h.advance(11)
    assert [n["data"]["device"] for n in h.notices("alert.cleared")].count("w-1") == 1


def test_parent_down_one_alert_for_the_parent_none_for_children(h):
    for d in ("bus-1", "m-0", "m-1", "m-2", "w-1"):
        h.send(d, "telemetry", volume_m3=1.0)
    keep_alive(h, ["w-1"], 60)  # the bus and its meters fall silent together
    assert [n["data"]["device"] for n in offline_alerts(h)] == ["bus-1"]
    assert h.notices("alert.cleared") == []  # no child alert was raised, not even briefly
    h.send("bus-1", "status", state="online")
    keep_alive(h, ["bus-1", "w-1", "m-0", "m-1", "m-2"], 30)
    assert len(h.notices("alert.cleared")) == 1
    keep_alive(h, ["bus-1", "w-1", "m-0", "m-1"], 30)  # now only m-2 is silent
    assert [n["data"]["device"] for n in offline_alerts(h)] == ["bus-1", "m-2"]


def test_child_alert_raised_before_the_parent_is_cleared_by_it(h):
    h.send("bus-1", "telemetry", volume_m3=1.0)
    h.send("m-0", "status", state="offline")  # the child first
    assert [n["data"]["device"] for n in offline_alerts(h)] == ["m-0"]
    h.send("bus-1", "status", state="offline")
    assert [n["data"]["device"] for n in offline_alerts(h)] == ["m-0", "bus-1"]
    assert [n["data"]["device"] for n in h.notices("alert.cleared")] == ["m-0"]
    assert h.alerting.alerts.get("m-0", "device_offline") is None


def test_active_alerts_tickets_and_timers_survive_a_restart(tmp_path):
    h = Harness(tmp_path / "c.db", DEVICES)
    h.send("w-1", "status", state="offline")
    h.send("bus-1", "status", state="online")
    h.close()
    h2 = Harness(tmp_path / "c.db", DEVICES, clock=h.clock)
    assert ("w-1", "device_offline") in h2.alerting.alerts.open
    assert ("w-1", "device_offline") in h2.alerting.tickets.open
    h2.send("w-1", "status", state="online")
    h2.advance(11)
    assert len(offline_alerts(h2, "w-1")) == 1  # not raised twice
    assert [n["data"]["device"] for n in h2.notices("alert.cleared")][:1] == ["w-1"]
    h2.close()


def test_a_crash_between_the_journal_and_the_rules_is_replayed_once(tmp_path):
    from devices.model import Decoded
    from gateway.store.journal import Accepted

    h = Harness(tmp_path / "c.db", DEVICES)
    st = h.store.devices["w-1"]
    m = Decoded("meter", "w-1", "event", h.clock.now_ms(), seq=1, event="leak_detected")
    h.store.write([Accepted(st, m, h.clock.now_ms())], [])  # committed, rules never ran
    h.crash()
    h2 = Harness(tmp_path / "c.db", DEVICES, clock=h.clock)
    assert [n["data"]["rule"] for n in h2.notices("alert.raised")] == ["leak_detected"]
    h2.close()
    h3 = Harness(tmp_path / "c.db", DEVICES, clock=h.clock)
    assert len(h3.notices("alert.raised")) == 1  # not raised twice
    h3.close()


def test_a_gateway_restart_gives_devices_a_grace_period(tmp_path):
    h = Harness(tmp_path / "c.db", DEVICES)
    h.send("w-1", "telemetry", volume_m3=1.0)
    h.store.checkpoint_state()
    h.close()
    h.clock.advance(3600 * 1000)  # the gateway was down for an hour, the meter was not
    h2 = Harness(tmp_path / "c.db", DEVICES, clock=h.clock)
    h2.advance(170)
    h2.send("w-1", "telemetry", volume_m3=1.0)
    h2.advance(60)
    assert offline_alerts(h2, "w-1") == []
    h2.close()


def test_the_store_says_offline_exactly_when_the_rules_do(tmp_path):
    """One owner of liveness: with ``silent_periods`` = 5 a door silent for 3.5 periods is
    neither alerted nor offline in the store (an unlock still goes through); past 5 periods
    both say offline, and a message brings both back."""
    h = Harness(tmp_path / "c.db", DEVICES, rules={"device_offline": {"silent_periods": 5}})
    h.send("w-1", "telemetry", volume_m3=1.0)
    assert h.store.devices["w-1"].online is True
    h.advance(3.5 * 60)
    assert offline_alerts(h, "w-1") == []
    assert h.store.devices["w-1"].online is True
    h.advance(1.6 * 60)
    assert len(offline_alerts(h, "w-1")) == 1
    assert h.store.devices["w-1"].online is False
    h.send("w-1", "telemetry", volume_m3=1.0)
    assert h.store.devices["w-1"].online is True
    h.close()


def test_a_silent_child_of_a_silent_parent_is_offline_in_the_store_without_an_alert(h):
    for d in ("bus-1", "m-0", "m-1", "m-2"):
        h.send(d, "telemetry", volume_m3=1.0)
    keep_alive(h, ["w-1"], 60)
    assert [n["data"]["device"] for n in offline_alerts(h)] == ["bus-1"]
    assert [h.store.devices[d].online for d in ("bus-1", "m-0", "m-1", "m-2")] == [False] * 4
