"""Command plans for adapter devices (CONTRACT.md 7.4): what is sent, what confirms it."""

from __future__ import annotations

import json

import pytest

from devices.adapters.commands import Target, confirmed_by_answer, plan
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as hp


def test_a_zigbee2mqtt_lock_is_unlocked_on_its_set_topic_and_confirmed_by_its_state() -> None:
    p = plan(
        "zigbee2mqtt", Target("Front Door Lock"), "unlock", {"seconds": 5}, {"base_topic": "z2m/"}
    )
    assert (p.transport, p.topic, json.loads(p.payload)) == (
        "mqtt",
        "z2m/Front Door Lock/set",
        {"state": "UNLOCK"},
    )
    assert p.confirm == ("locked", False)
    relay = plan("zigbee2mqtt", Target("Gate Relay", relay=True), "open_barrier", {}, {})
    assert (json.loads(relay.payload), relay.confirm) == ({"state": "ON"}, ("relay_on", True))


def test_shelly_and_tasmota_relays_switch_the_bound_channel() -> None:
    shelly = plan("shelly", Target("shellyplus2pm-gate", door=2), "unlock", {"seconds": 3}, {})
    assert shelly.topic == "shellyplus2pm-gate/rpc"
    request = json.loads(shelly.payload)
    assert (request["method"], request["params"]) == (
        "Switch.Set",
        {"id": 1, "on": True, "toggle_after": 3},
    )
    assert shelly.confirm == ("relay_l2_on", True)
    tasmota = plan("tasmota", Target("gate-relay"), "open_barrier", {"lane": "in"}, {})
    assert (tasmota.topic, tasmota.payload, tasmota.confirm) == (
        "cmnd/gate-relay/POWER",
        b"ON",
        ("relay_on", True),
    )
    custom = plan(
        "tasmota", Target("g", door=2), "unlock", {}, {"full_topic": "site/%prefix%/%topic%/"}
    )
    assert custom.topic == "site/cmnd/g/POWER2"


def test_a_hikvision_door_is_opened_through_isapi() -> None:
    p = plan("hikvision", Target("m", door=2, isapi_url="http://10.0.0.5/"), "unlock", {}, {})
    assert (p.transport, p.method, p.url) == (
        "http",
        "PUT",
        "http://10.0.0.5/ISAPI/AccessControl/RemoteControl/door/2",
    )
    assert b"<cmd>open</cmd>" in p.body
    assert confirmed_by_answer(200, "application/xml", hp.HIK_RESPONSE_OK) == (True, "")
    ok, why = confirmed_by_answer(200, "application/xml", hp.HIK_RESPONSE_REFUSED)
    assert not ok and why
    assert confirmed_by_answer(401, "", b"") == (False, "HTTP 401")


@pytest.mark.parametrize(
    ("adapter", "action"),
    [("chirpstack", "unlock"), ("vzenith", "open_barrier"), ("zigbee2mqtt", "open_compartment")],
)
def test_what_has_no_command_path_is_refused(adapter: str, action: str) -> None:
    with pytest.raises(Rejected) as caught:
        plan(adapter, Target("x", isapi_url="http://h"), action, {}, {})
    assert caught.value.reason == "not_commandable"
