"""Shelly Gen2/Gen3: component statuses, notifications, online and Switch.Set."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import SHELLY
from tests.unit.devices.adapters.helpers import decoded, only

S = ADAPTERS["shelly"]


def test_switch_status_wh_become_kwh() -> None:
    out = decoded(SHELLY["switch"])
    assert (out["source"], out["class"]) == ("shelly1pmminig3-5432044edbc0", "meter")
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": {
                "relay_on": True,
                "power_w": 11.5,
                "voltage_v": 240.3,
                "current_a": 0.073,
                "frequency_hz": 50.0,
                "energy_kwh": 152.669987,  # aenergy.total 152669.987 Wh
                "energy_last_minute_wh": 0.0,
                "energy_export_kwh": 0.0,
                "temperature_c": 55.0,
            },
        }
    ]


def test_second_switch_is_channel_two_and_by_minute_is_mwh() -> None:
    out = decoded(SHELLY["switch_channel"])
    assert out["source"] == "shellyplus2pm-Einfahrt"  # a custom topic_prefix
    assert out["messages"][0]["readings"] == {
        "relay_l2_on": False,
        "power_l2_w": 0.0,
        "voltage_l2_v": 230.8,
        "current_l2_a": 0.0,
        "frequency_l2_hz": 50.0,
        "power_factor_l2": 0.0,
        "energy_l2_kwh": 0.123585,
        "energy_last_minute_l2_wh": 1.5,  # 1500 mWh
        "temperature_c": 44.9,  # one device temperature, whatever the channel
    }


def test_pro_3em_phases_are_l1_to_l3_and_null_neutral_is_skipped() -> None:
    assert only(SHELLY["em"])["readings"] == {
        "power_w": 3036.328,
        "apparent_power_va": 3167.595,
        "current_total_a": 13.528,
        "voltage_v": 233.7,
        "current_a": 10.562,
        "power_l1_w": 2401.6,
        "apparent_power_l1_va": 2466.2,
        "power_factor_l1": 0.96,
        "voltage_l2_v": 236.4,
        "current_l2_a": 1.858,
        "power_l2_w": 406.0,
        "apparent_power_l2_va": 439.3,
        "power_factor_l2": -0.93,
        "voltage_l3_v": 236.8,
        "current_l3_a": 1.108,
        "power_l3_w": 228.6,
        "apparent_power_l3_va": 262.1,
        "power_factor_l3": -0.87,
    }


def test_emdata_totals_wh_become_kwh() -> None:
    assert only(SHELLY["emdata"])["readings"] == {
        "energy_kwh": 814.34585,
        "energy_export_kwh": 1.5,
        "energy_l1_kwh": 512.3456,
        "energy_export_l1_kwh": 0.0,
        "energy_l2_kwh": 204.00025,
        "energy_export_l2_kwh": 1.5,
        "energy_l3_kwh": 98.0,
        "energy_export_l3_kwh": 0.0,
    }


def test_em1_and_em1data_single_phase() -> None:
    # Jan200101/ShellyPy#20: a Pro EM-50's em1:1 status, verbatim but for the calibration key
    em1 = (
        b'{"id":1,"current":2.598,"voltage":234.9,"act_power":501.8,"aprt_power":612.4,'
        b'"pf":0.84,"freq":50}'
    )
    out = S.decode("shellyproem50-1/status/em1:1", em1, {})
    assert out.messages[0].readings == {
        "power_l2_w": 501.8,
        "apparent_power_l2_va": 612.4,
        "voltage_l2_v": 234.9,
        "current_l2_a": 2.598,
        "power_factor_l2": 0.84,
        "frequency_l2_hz": 50,
    }
    data = b'{"id":0,"total_act_energy":2500.5,"total_act_ret_energy":10}'
    out = S.decode("shellyproem50-1/status/em1data:0", data, {})
    assert out.messages[0].readings == {"energy_kwh": 2.5005, "energy_export_kwh": 0.01}


def test_notify_status_reports_only_what_changed_at_the_device_time() -> None:
    assert only(SHELLY["notify_status"]) == {
        "kind": "telemetry",
        "readings": {"power_w": 11.5, "current_a": 0.071},  # no zeros for the rest
        "ts": 1788945292880,
    }


def test_notify_full_status_merges_components() -> None:
    frame = {
        "src": "shellypro3em-1",
        "method": "NotifyFullStatus",
        "params": {
            "ts": 1700000000.5,
            "em:0": {"id": 0, "total_act_power": 150},
            "emdata:0": {"id": 0, "total_act": 1000},
            "wifi": {"rssi": -61},
            "sys": {"uptime": 3600},
        },
    }
    out = S.decode("shellypro3em-1/events/rpc", json.dumps(frame).encode(), {})
    assert out.messages[0].readings == {
        "power_w": 150,
        "energy_kwh": 1.0,
        "rssi_dbm": -61,
        "uptime_s": 3600,
    }


def test_notifications_without_readings_and_events_are_ignored() -> None:
    assert decoded(SHELLY["notify_mqtt"])["ignored"] == "no_readings"
    assert decoded(SHELLY["notify_event"])["ignored"] == "event"
    reply = b'{"id":1,"src":"shellyplus1-1","dst":"courtyard","result":{"was_on":false}}'
    assert S.decode("shellyplus1-1/events/rpc", reply, {}).ignored == "rpc_reply"


def test_online() -> None:
    assert only(SHELLY["online"]) == {"kind": "status", "state": "offline"}
    assert S.decode("p/online", b"true", {}).messages[0].state == "online"


def test_switch_set_is_a_command_and_replies_are_ignored() -> None:
    out = decoded(SHELLY["rpc_set"])
    assert (out["source"], out["messages"]) == (
        "shellyplus1-a8032ab12345",
        [{"kind": "command", "action": "on"}],
    )
    reply = b'{"id":1,"src":"shellyplus1-a8032ab12345","result":{"was_on":false}}'
    assert S.decode("courtyard/rpc", reply, {}).ignored == "rpc_reply"
    other = b'{"id":2,"src":"x","method":"Shelly.GetStatus"}'
    assert S.decode("shellyplus1-1/rpc", other, {}).ignored == "rpc_other"


def test_prefix_with_slashes_is_the_source() -> None:
    out = S.decode("site1/gate/relay/status/switch:0", b'{"id":0,"output":true}', {})
    assert (out.source, out.messages[0].readings) == ("site1/gate/relay", {"relay_on": True})


def test_unknown_component_is_no_readings() -> None:
    assert S.decode("p/status/input:0", b'{"id":0,"state":false}', {}).ignored == "no_readings"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("p/unknown", b"{}", "unknown_topic"),
        ("/online", b"true", "unknown_topic"),
        ("p/online", b"yes", "bad_status"),
        ("p/status/switch:0", b"[]", "not_object"),
        ("p/events/rpc", b'{"method":"NotifyStatus","params":[1]}', "bad_payload"),
    ],
)
def test_rejections(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        S.decode(topic, payload, {})
    assert err.value.reason == reason


def test_subscriptions() -> None:
    assert S.subscriptions({}) == ("+/online", "+/events/rpc", "+/status/+")
    assert S.subscriptions({"topic_prefix": "site1/+"})[0] == "site1/+/online"
