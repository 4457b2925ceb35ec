"""Dahua VTO events as DahuaVTO2MQTT publishes them."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import DAHUA
from tests.unit.devices.adapters.helpers import decoded, only

D = ADAPTERS["dahua-vto"]


def test_remote_open_is_door_unlocked_with_its_record_number() -> None:
    out = decoded(DAHUA["access"])
    assert (out["source"], out["class"]) == ("DahuaVTO", "access")
    assert out["messages"] == [
        {
            "kind": "event",
            "event": "door_unlocked",
            "attrs": {"method": "remote", "reader": "1"},  # empty CardNo and UserID left out
            "ts": 1583173448000,  # UTC, not the offset-less LocaleTime
            "seq": 691,  # RecNo
        }
    ]


def test_exit_button_under_another_prefix() -> None:
    out = decoded(DAHUA["access_button"])
    assert out["source"] == "gate-vto"
    assert out["messages"][0]["attrs"] == {"method": "button"}


def test_fingerprint_with_a_user_and_a_refused_card() -> None:
    granted = {"Action": "Pulse", "Data": {"Method": 6, "Status": 1, "UserID": "101", "UTC": 1}}
    out = D.decode("DahuaVTO/AccessControl/Event", json.dumps(granted).encode(), {})
    assert out.messages[0].event == "door_unlocked"
    assert dict(out.messages[0].attrs) == {"method": "fingerprint", "person": "101"}
    refused = {"Action": "Pulse", "Data": {"Method": 1, "Status": 0, "CardNo": "A1B2C3"}}
    out = D.decode("DahuaVTO/AccessControl/Event", json.dumps(refused).encode(), {})
    assert out.messages[0].event == "access_denied"
    assert dict(out.messages[0].attrs) == {"credential": "A1B2C3", "reason": "other"}


def test_call_from_the_vto_is_an_intercom_call() -> None:
    assert only(DAHUA["call"]) == {
        "kind": "event",
        "event": "intercom_call",
        "attrs": {},
        "ts": 1583172673000,
    }
    stop = b'{"Action":"Stop","Data":{"UTC":1583172680}}'
    assert D.decode("DahuaVTO/CallNoAnswered/Event", stop, {}).ignored == "other_event"


def test_other_events_are_ignored_and_open_is_a_command() -> None:
    assert decoded(DAHUA["other"])["ignored"] == "other_event"
    assert only(DAHUA["open"]) == {"kind": "command", "action": "unlock"}


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("Other/AccessControl/Event", b"{}", "unknown_topic"),
        ("DahuaVTO/AccessControl", b"{}", "unknown_topic"),
        ("DahuaVTO/AccessControl/Event", b"[]", "not_object"),
        ("DahuaVTO/AccessControl/Event", b'{"Action":"Pulse","Data":1}', "bad_payload"),
    ],
)
def test_rejections(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        D.decode(topic, payload, {})
    assert err.value.reason == reason


def test_subscriptions() -> None:
    assert D.subscriptions({}) == ("DahuaVTO/+/Event", "DahuaVTO/Command/Open")
