"""Tasmota: ENERGY, STATE, LWT, STATUS8/10, relays and commands under any FullTopic."""

from __future__ import annotations

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import TASMOTA
from tests.unit.devices.adapters.helpers import decoded, only

T = ADAPTERS["tasmota"]

POW_R2 = {
    "energy_kwh": 6.294,
    "energy_today_kwh": 0.954,
    "energy_yesterday_kwh": 5.34,
    "power_w": 2635,
    "apparent_power_va": 2650,
    "reactive_power_var": 282,
    "power_factor": 0.99,
    "voltage_v": 227,
    "current_a": 11.661,
}


def test_sensor_energy_in_vocabulary_units_without_period() -> None:
    out = decoded(TASMOTA["sensor"])
    assert (out["source"], out["class"]) == ("pow1", "meter")
    # Time has no offset: left to the hub's clock; Period (Wh since the last message) is out
    assert out["messages"] == [{"kind": "telemetry", "readings": POW_R2}]


def test_status8_wraps_the_same_energy_in_status_sns() -> None:
    readings = only(TASMOTA["status8"])["readings"]
    assert readings["energy_kwh"] == 6.404
    assert readings["power_w"] == 2629
    assert readings["current_a"] == 11.677
    assert set(readings) == set(POW_R2)


def test_status10_multi_channel_arrays_give_totals_and_channels() -> None:
    assert only(TASMOTA["status10_channels"])["readings"] == {
        "energy_kwh": 0.077,
        "energy_today_kwh": 0.077,
        "energy_yesterday_kwh": 0.0,
        "power_w": 8.15,  # the sum of the channels
        "power_l1_w": 8.15,
        "power_l2_w": 0,
        "apparent_power_va": 5,
        "reactive_power_var": 4,
        "power_factor": 0.0,
        "power_factor_l2": 0.0,
        "voltage_v": 237,  # common to both channels: a scalar
        "current_a": 0.0,
        "current_l2_a": 0.0,
        "frequency_hz": 50,
        "temperature_c": 49.6,  # ANALOG's Temperature, TempUnit C
    }


def test_arrays_of_numeric_strings_and_fahrenheit() -> None:
    body = (
        b'{"ENERGY":{"Power":["100.5","20"],"Total":[1.5,"2.25"]},'
        b'"DS18B20":{"Temperature":212},"TempUnit":"F"}'
    )
    readings = T.decode("tele/sub/SENSOR", body, {}).messages[0].readings
    assert readings == {
        "energy_kwh": 3.75,
        "energy_l1_kwh": 1.5,
        "energy_l2_kwh": 2.25,
        "power_w": 120.5,
        "power_l1_w": 100.5,
        "power_l2_w": 20.0,
        "temperature_c": 100.0,
    }


def test_state_relay_signal_dbm_quality_pct_uptime_and_time_with_offset() -> None:
    out = decoded(TASMOTA["state"])
    assert out["source"] == "demo-sensor"  # FullTopic %topic%/%prefix%/
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": {"uptime_s": 13, "rssi_dbm": -57, "wifi_rssi_pct": 86, "relay_on": True},
            "ts": 1624799024000,  # 2021-06-27T15:03:44+02:00
        }
    ]


def test_state_of_older_firmware_has_no_dbm_and_several_relays() -> None:
    body = b'{"UptimeSec":14,"POWER1":"ON","POWER2":"OFF","Wifi":{"RSSI":100}}'
    readings = T.decode("tele/plug/STATE", body, {}).messages[0].readings
    assert readings == {
        "uptime_s": 14,
        "wifi_rssi_pct": 100,
        "relay_on": True,
        "relay_l2_on": False,
    }


def test_lwt() -> None:
    assert only(TASMOTA["lwt"]) == {"kind": "status", "state": "offline"}
    assert T.decode("tele/x/LWT", b"Online", {}).messages[0].state == "online"
    with pytest.raises(Rejected) as err:
        T.decode("tele/x/LWT", b"gone", {})
    assert err.value.reason == "bad_status"


def test_relay_results() -> None:
    assert only(TASMOTA["power_json"])["readings"] == {"relay_on": False}
    assert only(TASMOTA["power_text"])["readings"] == {"relay_l2_on": True}
    assert only(TASMOTA["result"])["readings"] == {"relay_on": True}
    other = T.decode("stat/x/RESULT", b'{"TelePeriod":300}', {})
    assert other.ignored == "command_result"


def test_commands_and_queries() -> None:
    out = decoded(TASMOTA["command"])
    assert (out["source"], out["messages"]) == ("gate-relay", [{"kind": "command", "action": "on"}])
    assert T.decode("cmnd/x/POWER1", b"TOGGLE", {}).messages[0].action == "toggle"
    assert T.decode("cmnd/x/POWER", b"0", {}).messages[0].action == "off"
    assert decoded(TASMOTA["query"])["ignored"] == "query"
    assert T.decode("cmnd/x/TelePeriod", b"60", {}).ignored == "command_other"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("tele/x/INFO1", "tele_other"),
        ("stat/x/STATUS", "stat_other"),
        ("stat/x/UPGRADE", "stat_other"),
    ],
)
def test_other_topics_are_ignored(topic: str, reason: str) -> None:
    assert T.decode(topic, b"{}", {}).ignored == reason


@pytest.mark.parametrize(
    ("full_topic", "topic", "source"),
    [
        ("%prefix%/%topic%/", "tele/kitchen/plug/SENSOR", "kitchen/plug"),
        ("%topic%/%prefix%/", "kitchen/tele/SENSOR", "kitchen"),
        ("site1/%prefix%/%hostname%/%topic%/", "site1/tele/tasmota-1234/pow1/SENSOR", "pow1"),
    ],
)
def test_any_full_topic(full_topic: str, topic: str, source: str) -> None:
    out = T.decode(topic, b'{"ENERGY":{"Total":1}}', {"full_topic": full_topic})
    assert out.source == source
    assert out.messages[0].readings == {"energy_kwh": 1}


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("zigbee2mqtt/x", b"{}", "unknown_topic"),
        ("tele/SENSOR", b"{}", "unknown_topic"),
        ("tele/x/SENSOR", b"[]", "not_object"),
        ("stat/x/STATUS8", b'{"Status":{}}', "bad_payload"),
        ("stat/x/POWER", b"maybe", "bad_payload"),
    ],
)
def test_rejections(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        T.decode(topic, payload, {})
    assert err.value.reason == reason


def test_subscriptions_follow_the_full_topic() -> None:
    assert T.subscriptions({}) == ("tele/+/+", "stat/+/+", "cmnd/+/+")
    assert T.subscriptions({"full_topic": "%topic%/%prefix%/"}) == (
        "+/tele/+",
        "+/stat/+",
        "+/cmnd/+",
    )
