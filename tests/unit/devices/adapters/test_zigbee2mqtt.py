"""Zigbee2MQTT: topics, states, locks and commands decoded to the contract's vocabulary."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import Z2M
from tests.unit.devices.adapters.helpers import decoded, only

Z = ADAPTERS["zigbee2mqtt"]


def test_contact_sensor_closed_contact_is_a_closed_door_and_mv_become_volts() -> None:
    out = decoded(Z2M["contact"])
    assert out["source"] == "0x00158e5202e6be17"
    assert out["class"] == "access"
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": {
                "door_open": True,  # "contact": false is an open door
                "battery_pct": 100,
                "battery_v": 3.015,
                "device_temperature_c": 22,
                "linkquality": 110,
            },
        }
    ]


def test_leak_sensor_reports_leak_and_reads_numeric_strings() -> None:
    out = decoded(Z2M["leak"])
    assert out["class"] == "meter"
    assert out["messages"][0]["readings"] == {
        "leak": True,
        "battery_pct": 80.0,  # "80.00" from 2019 firmware
        "battery_v": 2.985,
        "linkquality": 57,
    }


def test_plug_with_metering_under_another_base_topic_and_a_name_with_slash() -> None:
    out = decoded(Z2M["plug"])
    assert out["source"] == "floor 2/laundry plug"
    assert out["class"] == "meter"
    # voltage stays in V beside power; child_lock is not a door; null settings are skipped
    assert out["messages"][0]["readings"] == {
        "relay_on": True,
        "voltage_v": 229,
        "power_w": 118,
        "energy_kwh": 12.47,
        "current_a": 0.53,
        "linkquality": 156,
    }


def test_lock_state_reads_locked_from_lock_state() -> None:
    out = decoded(Z2M["lock"])
    assert out["source"] == "Driveway Door Lock"
    assert out["class"] == "access"
    assert only(Z2M["lock"])["readings"] == {"locked": False, "battery_pct": 98, "linkquality": 96}


@pytest.mark.parametrize(
    ("lock_state", "state", "locked"),
    [("locked", "UNLOCK", True), ("not_fully_locked", "LOCK", False), (None, "LOCK", True)],
)
def test_lock_state_wins_over_state(lock_state: str | None, state: str, locked: bool) -> None:
    payload = {"state": state} if lock_state is None else {"state": state, "lock_state": lock_state}
    out = Z.decode("zigbee2mqtt/Front Door", json.dumps(payload).encode(), {}).as_json()
    assert out["messages"][0]["readings"] == {"locked": locked}


def test_lock_action_is_an_event_with_its_method_and_user() -> None:
    out = decoded(Z2M["lock_action"])
    assert out["messages"] == [
        {"kind": "telemetry", "readings": {"locked": False, "battery_pct": 88}},
        {"kind": "event", "event": "door_unlocked", "attrs": {"method": "pin", "user": 3}},
    ]


@pytest.mark.parametrize(
    ("action", "source", "event", "attrs"),
    [
        ("manual_lock", None, "door_locked", {"method": "key"}),
        ("rfid_unlock", None, "door_unlocked", {"method": "card"}),
        ("unlock", "rf", "door_unlocked", {"method": "remote"}),
        ("auto_lock", None, "door_locked", {}),
        (
            "unlock_failure_invalid_pin_or_id",
            "keypad",
            "access_denied",
            {"reason": "unknown_credential", "method": "pin"},
        ),
        ("lock_failure_invalid_schedule", None, "access_denied", {"reason": "outside_schedule"}),
    ],
)
def test_lock_actions(action: str, source: str | None, event: str, attrs: dict[str, str]) -> None:
    body = {"action": action, "action_source_name": source}
    out = Z.decode("zigbee2mqtt/Front Door", json.dumps(body).encode(), {}).as_json()
    assert out["class"] == "access"
    assert out["messages"] == [{"kind": "event", "event": event, "attrs": attrs}]


@pytest.mark.parametrize("action", ['""', "null", '"single"'])
def test_empty_null_or_unknown_action_is_no_event(action: str) -> None:
    payload = f'{{"action": {action}, "battery": 90}}'.encode()
    out = Z.decode("zigbee2mqtt/Front Door", payload, {}).as_json()
    assert [m["kind"] for m in out["messages"]] == ["telemetry"]


def test_cached_state_after_an_action_is_telemetry_only() -> None:
    out = decoded(Z2M["lock_reset"])
    assert out["messages"] == [
        {"kind": "telemetry", "readings": {"locked": False, "battery_pct": 100, "linkquality": 255}}
    ]


def test_partial_state_decodes_what_is_present() -> None:
    assert only(Z2M["partial"]) == {"kind": "telemetry", "readings": {"door_open": False}}


def test_state_without_known_keys_is_ignored_not_rejected() -> None:
    out = Z.decode("zigbee2mqtt/plug", b'{"child_lock":"LOCK","update":{"state":"idle"}}', {})
    assert out.ignored == "no_readings"
    assert out.messages == ()


def test_last_seen_gives_the_timestamp() -> None:
    iso = b'{"contact":true,"last_seen":"2024-03-12T12:31:43.484+00:00"}'
    epoch = b'{"contact":true,"last_seen":1710246703484}'
    assert only_ts(iso) == only_ts(epoch) == 1710246703484


def only_ts(payload: bytes) -> int | None:
    message = Z.decode("zigbee2mqtt/door", payload, {}).messages[0]
    return message.ts_ms


@pytest.mark.parametrize("name", ["availability", "availability_legacy"])
def test_availability_json_and_legacy_text(name: str) -> None:
    out = decoded(Z2M[name])
    assert out["source"] == "Front Door"
    assert out["messages"] == [
        {"kind": "status", "state": "offline" if name == "availability" else "online"}
    ]


def test_bridge_state_is_the_bridge_status() -> None:
    out = decoded(Z2M["bridge_state"])
    assert (out["source"], out["messages"]) == ("bridge", [{"kind": "status", "state": "online"}])
    legacy = Z.decode("zigbee2mqtt/bridge/state", b"offline", {})
    assert legacy.messages[0].state == "offline"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("zigbee2mqtt/bridge/log", "bridge_log"),
        ("zigbee2mqtt/bridge/logging", "bridge_log"),
        ("zigbee2mqtt/bridge/info", "bridge_info"),
        ("zigbee2mqtt/bridge/devices", "bridge_info"),
        ("zigbee2mqtt/bridge/event", "bridge_event"),
        ("zigbee2mqtt/bridge/request/permit_join", "bridge_request"),
        ("zigbee2mqtt/bridge/response/permit_join", "bridge_response"),
        ("zigbee2mqtt/bridge/something_new", "bridge_other"),
        ("zigbee2mqtt/Front Door/get", "get_request"),
    ],
)
def test_bridge_topics_and_get_are_ignored_with_stable_reasons(topic: str, reason: str) -> None:
    out = Z.decode(topic, b'{"anything": 1}', {})
    assert out.ignored == reason
    assert out.messages == ()


def test_set_is_a_command() -> None:
    assert only(Z2M["set"]) == {"kind": "command", "action": "lock"}
    assert only(Z2M["set_plain"]) == {"kind": "command", "action": "unlock"}
    on = Z.decode("zigbee2mqtt/laundry plug/set", b'{"state":"ON"}', {})
    assert on.messages[0].action == "on"
    by_attribute = Z.decode("zigbee2mqtt/Front Door/set/state", b"UNLOCK", {})
    assert (by_attribute.source, by_attribute.messages[0].action) == ("Front Door", "unlock")
    brightness = Z.decode("zigbee2mqtt/lamp/set", b'{"brightness":100}', {})
    assert brightness.ignored == "set_other"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("other/0x01", b"{}", "unknown_topic"),
        ("zigbee2mqtt/", b"{}", "unknown_topic"),
        ("zigbee2mqtt//availability", b"online", "unknown_topic"),
        ("zigbee2mqtt/door", b"[1,2]", "not_object"),
        ("zigbee2mqtt/door", b"{", "not_json"),
        ("zigbee2mqtt/door", b"", "empty"),
        ("zigbee2mqtt/door/availability", b"maybe", "bad_status"),
    ],
)
def test_rejections(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        Z.decode(topic, payload, {})
    assert err.value.reason == reason


def test_subscriptions_follow_the_base_topic() -> None:
    assert Z.subscriptions({}) == ("zigbee2mqtt/#",)
    assert Z.subscriptions({"base_topic": "z2m/site1"}) == ("z2m/site1/#",)
