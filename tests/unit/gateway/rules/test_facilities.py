"""Meters, parking, lockers and batteries on a fake clock (48 hours in milliseconds)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings
from gateway.rules.builtin import build_rules
from tests.support.rules_harness import Harness

DEVICES = [
    {"id": "w-1", "community": "c1", "class": "meter"},
    {"id": "e-1", "community": "c1", "class": "meter"},
    {"id": "p-1", "community": "c1", "class": "parking"},
    {"id": "lot-1", "community": "c1", "class": "parking"},
    {"id": "barrier-1", "community": "c1", "class": "parking"},
    {"id": "locker-1", "community": "c1", "class": "locker"},
]


@pytest.fixture
def h(tmp_path):
    h = Harness(tmp_path / "c.db", DEVICES, rules={"power_over_limit": {"limit_w": 5000}})
    yield h
    h.close()


def rules_raised(h):
    return [(n["data"]["device"], n["data"]["rule"]) for n in h.notices("alert.raised")]


def test_water_flowing_two_hours_without_a_break_is_a_leak(h):
    for _ in range(119):
        h.send("w-1", "telemetry", flow_m3h=0.3, volume_m3=10.0)
        h.advance(60)
    assert rules_raised(h) == []
    h.send("w-1", "telemetry", flow_m3h=0.2, volume_m3=10.1)
    h.advance(61)
    assert rules_raised(h) == [("w-1", "continuous_flow")]
    assert len(h.notices("ticket.opened")) == 1
    h.send("w-1", "telemetry", flow_m3h=0.0, volume_m3=10.2)
    h.advance(61)
    assert [n["data"]["rule"] for n in h.notices("alert.cleared")] == ["continuous_flow"]
    assert [n["data"]["resolution"] for n in h.notices("ticket.resolved")] == ["recovered"]


def test_a_break_in_the_flow_restarts_the_two_hours(h):
    h.send("w-1", "telemetry", flow_m3h=0.3)
    h.advance(3600)
    h.send("w-1", "telemetry", flow_m3h=0.0)
    h.send("w-1", "telemetry", flow_m3h=0.3)
    h.advance(3600 + 60)
    assert rules_raised(h) == []


def test_counter_backwards_power_limit_and_meter_events(h):
    h.send("e-1", "telemetry", energy_kwh=100.0, power_w=1000)
    h.send("e-1", "telemetry", energy_kwh=100.5, power_w=6000)
    h.send("e-1", "telemetry", energy_kwh=3.0, power_w=4800)  # under the limit, not under 90%
    h.event("w-1", "leak_detected")
    h.event("w-1", "reverse_flow")
    assert rules_raised(h) == [
        ("e-1", "power_over_limit"),
        ("e-1", "counter_backwards"),
        ("w-1", "leak_detected"),
        ("w-1", "reverse_flow"),
    ]
    h.advance(120)
    assert h.alerting.alerts.get("e-1", "power_over_limit") is not None
    h.send("e-1", "telemetry", energy_kwh=3.1, power_w=4000)
    h.advance(61)
    assert h.alerting.alerts.get("e-1", "power_over_limit") is None


def test_a_leak_sensor_turning_wet_raises_leak_detected_once_and_dry_clears_it(h):
    h.send("w-1", "telemetry", leak=False)
    h.send("w-1", "telemetry", leak=True)
    h.send("w-1", "telemetry", leak=True)
    assert rules_raised(h) == [("w-1", "leak_detected")]
    h.send("w-1", "telemetry", leak=False)
    h.advance(1)
    assert h.alerting.alerts.get("w-1", "leak_detected") is None


def test_parking_overstay_lot_nearly_full_and_barrier_fault(h):
    h.send("p-1", "telemetry", occupied=True)
    h.advance(24 * 3600 - 1)
    assert rules_raised(h) == []
    h.advance(2)
    assert rules_raised(h) == [("p-1", "parking_overstay")]
    h.send("p-1", "telemetry", occupied=False)
    assert [n["data"]["rule"] for n in h.notices("alert.cleared")] == ["parking_overstay"]
    h.send("lot-1", "telemetry", free_spaces=3, total_spaces=40)  # 92.5% used
    assert len(rules_raised(h)) == 1
    h.send("lot-1", "telemetry", free_spaces=2, total_spaces=40)  # 95%
    h.event("barrier-1", "barrier_fault", lane="in")
    assert rules_raised(h)[1:] == [("lot-1", "lot_nearly_full"), ("barrier-1", "barrier_fault")]


def test_parcel_left_48_h_one_reminder_then_again_after_the_interval(h):
    h.event("locker-1", "parcel_deposited", compartment=3, parcel_id="P-1", unit="b1-0101")
    h.event("locker-1", "parcel_deposited", compartment=4, parcel_id="P-2", unit="b1-0102")
    h.advance(3600)
    h.event("locker-1", "parcel_picked_up", compartment=4, parcel_id="P-2")
    h.advance(47 * 3600 - 1)
    assert h.notices("parcel.reminder") == []
    h.advance(2)
    reminders = h.notices("parcel.reminder")
    assert len(reminders) == 1
    data = reminders[0]["data"]
    assert (data["parcel_id"], data["compartment"], data["unit"], data["reminder"]) == (
        "P-1",
        3,
        "b1-0101",
        1,
    )
    h.advance(23 * 3600)
    assert len(h.notices("parcel.reminder")) == 1
    h.advance(3600)
    assert len(h.notices("parcel.reminder")) == 2
    h.event("locker-1", "parcel_picked_up", compartment=3, parcel_id="P-1")
    h.advance(72 * 3600)
    assert len(h.notices("parcel.reminder")) == 2
    assert rules_raised(h) == []  # a reminder is a service trigger, not an alert


def test_parcel_timer_survives_a_restart(tmp_path):
    h = Harness(tmp_path / "c.db", DEVICES)
    h.event("locker-1", "parcel_deposited", compartment=1, parcel_id="P-9", unit="b1-0101")
    h.advance(3600)
    h.close()
    h.clock.advance(47 * 3600 * 1000)  # the gateway was down; the deadline passed meanwhile
    h2 = Harness(tmp_path / "c.db", DEVICES, clock=h.clock)
    assert h2.notices("parcel.reminder") == []
    h2.advance(0.001)
    assert len(h2.notices("parcel.reminder")) == 1
    h2.close()


def test_lockers_and_batteries(h):
    h.event("locker-1", "compartment_jammed", compartment=2)
    h.event("locker-1", "compartment_jammed", compartment=5)
    h.event("locker-1", "compartment_left_open", compartment=7)
    h.send("w-1", "telemetry", battery_pct=14.0)
    h.send("w-1", "telemetry", battery_pct=16.0)  # inside the band: still low
    h.advance(120)
    assert rules_raised(h) == [
        ("locker-1", "compartment_jammed"),
        ("locker-1", "compartment_left_open"),
        ("w-1", "battery_low"),
    ]
    h.send("w-1", "telemetry", battery_pct=90.0)
    h.advance(61)
    assert [n["data"]["rule"] for n in h.notices("alert.cleared")] == ["battery_low"]
    assert [n["data"]["rule"] for n in h.notices("ticket.resolved")] == ["battery_low"]


def test_overrides_apply_and_bad_ones_stop_start_up(tmp_path):
    rules = build_rules({"door_held_open": {"open_s": 30, "severity": "critical", "ticket": True}})
    r = rules["door_held_open"]
    assert (r.p("open_s"), r.severity, r.ticket) == (30.0, "critical", True)
    cases = {
        "[rules.door_helt_open]\nopen_s = 5\n": "rules.door_helt_open: unknown rule",
        "[rules.door_held_open]\nopen_s = -5\n": "rules.door_held_open.open_s = -5",
        "[rules.battery_low]\nseverity = 'urgent'\n": "rules.battery_low.severity",
        "[rules.battery_low]\nticket = 1\n": "rules.battery_low.ticket",
        "[rules.battery_low]\nbelow = 10\n": "rules.battery_low.below: unknown key",
    }
    for text, expected in cases.items():
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_settings(cfg, environ={})
        assert expected in str(err.value)
    cfg.write_text("[rules.parcel_reminder]\nafter_s = 7200\nrepeat_s = 0\n")
    assert load_settings(cfg, environ={}).rules == {
        "parcel_reminder": {"after_s": 7200, "repeat_s": 0}
    }
