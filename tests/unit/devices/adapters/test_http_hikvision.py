"""Hikvision access controllers: pushed events, the event log answer, the remote open."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from devices.adapters import hikvision
from devices.adapters.base import Adapted
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as p

TS_12_32_28 = 1_724_671_948_000  # 2024-08-26T12:32:28+01:00


def push(document: dict[str, Any], options: dict[str, str] | None = None) -> Adapted:
    return hikvision.decode("application/json", orjson.dumps(document), options or {})


def only_event(adapted: Adapted) -> dict[str, Any]:
    assert len(adapted.messages) == 1
    return adapted.messages[0].as_json()


def test_real_push_lock_open() -> None:
    got = push(p.HIK_LOCK_OPEN)
    assert got.as_json() == {
        "adapter": "hikvision",
        "source": p.HIK_MAC,
        "class": "access",
        "messages": [
            {
                "kind": "event",
                "event": "door_unlocked",
                "attrs": {"door": 1},
                "ts": TS_12_32_28,
                "seq": 257,
            }
        ],
    }
    assert got.identity == p.HIK_MAC
    assert got.pictures == ()


@pytest.mark.parametrize(
    ("document", "event", "attrs"),
    [
        (
            p.HIK_CARD_PASS,
            "access_granted",
            {"method": "card", "credential": "3728410153", "person": "1021"},
        ),
        (p.HIK_FACE_PASS, "access_granted", {"method": "face", "person": "1021"}),
        (p.HIK_FINGERPRINT_PASS, "access_granted", {"method": "fingerprint", "person": "1021"}),
        (
            p.HIK_CARD_UNKNOWN,
            "access_denied",
            {"method": "card", "reason": "unknown_credential", "credential": "99887766"},
        ),
        (
            p.HIK_CARD_NO_RIGHT,
            "access_denied",
            {"method": "card", "reason": "no_permission", "credential": "3728410153"},
        ),
        (p.HIK_CARD_EXPIRED, "access_denied", {"method": "card", "reason": "expired"}),
        (p.HIK_DOOR_OPEN, "door_opened", {"door": 1}),
        (p.HIK_DOOR_CLOSE, "door_closed", {"door": 1}),
        (p.HIK_DOOR_FORCED, "door_forced", {"door": 1}),
        (p.HIK_DOOR_HELD, "door_held_open", {"door": 1}),
        (p.HIK_EXIT_BUTTON, "door_unlocked", {"method": "button"}),
        (p.HIK_REMOTE_OPEN, "door_unlocked", {"method": "remote", "door": 1}),
        (p.HIK_TAMPER, "tamper", {"part": "controller"}),
        (p.HIK_DURESS, "duress", {"person": "1021", "credential": "3728410153"}),
        (p.HIK_UNMAPPED, "other", {"major": 5, "minor": 0x13, "door": 1}),
    ],
)
def test_event_codes(document: dict[str, Any], event: str, attrs: dict[str, Any]) -> None:
    got = only_event(push(document))
    assert got["event"] == event
    assert got["attrs"].items() >= attrs.items()
    assert got["seq"] == document["AccessControllerEvent"]["serialNo"]
    assert got["ts"] == TS_12_32_28


def test_person_fields_kept_apart_from_the_configured_verify_mode() -> None:
    attrs = only_event(push(p.HIK_FACE_PASS))["attrs"]
    assert attrs == {
        "method": "face",
        "person": "1021",
        "person_name": "B3-1201",
        "user_type": "normal",
        "verify_mode": "cardOrFaceOrFp",
        "door": 1,
        "reader": 1,
        "card_type": 1,
    }


def test_held_open_seconds_come_from_the_configured_threshold() -> None:
    assert "seconds" not in only_event(push(p.HIK_DOOR_HELD))["attrs"]
    got = only_event(push(p.HIK_DOOR_HELD, {"held_open_seconds": "30"}))
    assert got["attrs"]["seconds"] == 30
    for nonsense in ("-5", "0", "soon"):
        held = only_event(push(p.HIK_DOOR_HELD, {"held_open_seconds": nonsense}))
        assert "seconds" not in held["attrs"]


def test_multipart_push_keeps_the_face_picture() -> None:
    body = p.hik_multipart(p.HIK_FACE_PASS)
    got = hikvision.decode("multipart/form-data; boundary=MIME_boundary", body, {})
    assert only_event(got)["event"] == "access_granted"
    assert only_event(got)["seq"] == 301
    assert len(got.pictures) == 1
    assert got.pictures[0].content_type == "image/jpeg"
    assert got.pictures[0].data == p.JPEG
    assert got.pictures[0].name == "Picture.jpg"
    assert got.identity == p.HIK_MAC


def test_mac_normalized_and_missing_mac_claims_nothing() -> None:
    upper = {**p.HIK_DOOR_OPEN, "macAddress": "BC-5E-33-62-2A-5C"}
    assert push(upper).identity == p.HIK_MAC
    bare = {k: v for k, v in p.HIK_DOOR_OPEN.items() if k != "macAddress"}
    assert push(bare).identity == ""
    assert push({**p.HIK_DOOR_OPEN, "macAddress": "not a mac"}).identity == ""


def test_time_without_offset_is_left_to_the_hub() -> None:
    local = {**p.HIK_DOOR_OPEN, "dateTime": "2024-08-26T12:32:28"}
    assert "ts" not in only_event(push(local))
    utc = {**p.HIK_DOOR_OPEN, "dateTime": "2024-08-26T11:32:28Z"}
    assert only_event(push(utc))["ts"] == TS_12_32_28


def test_heartbeat_ignored_with_a_stable_reason() -> None:
    got = push(p.HIK_HEARTBEAT)
    assert got.ignored == "heartbeat"
    assert got.messages == ()
    assert got.identity == p.HIK_MAC
    other = push({"eventType": "videoloss", "macAddress": p.HIK_MAC})
    assert other.ignored == "not_access_event"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (p.hik_push(5, 1) | {"AccessControllerEvent": {"subEventType": 1}}, "bad_event_code"),
        (
            p.hik_push(5, 1) | {"AccessControllerEvent": {"majorEventType": "five"}},
            "bad_event_code",
        ),
        ([1, 2], "not_object"),
    ],
)
def test_unreadable_events_rejected(document: Any, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        hikvision.decode("application/json", orjson.dumps(document), {})
    assert exc.value.reason == reason


def test_xml_body_rejected_for_an_access_controller() -> None:
    with pytest.raises(Rejected) as exc:
        hikvision.decode("application/xml", b"<EventNotificationAlert/>", {})
    assert exc.value.reason == "not_json"


def test_search_answer_gives_the_messages_a_push_would_have() -> None:
    page = hikvision.parse_search(orjson.dumps(p.HIK_SEARCH_ANSWER), {})
    assert page.more is True
    assert page.total == 4
    assert [m.seq for m in page.messages] == [258, 259, 260]
    assert [m.event for m in page.messages] == ["access_granted", "door_opened", "door_forced"]
    first = page.messages[0].as_json()
    assert first["attrs"] == {
        "method": "card",
        "credential": "3728410153",
        "person": "1021",
        "person_name": "B3-1201",
        "door": 1,
    }
    assert first["ts"] == 1_724_672_401_000  # 2024-08-26T12:40:01+01:00
    # the same event pushed and found in the log is one message: same event, ts and seq
    pushed = p.hik_push(
        5,
        1,
        258,
        **{k: v for k, v in p.PERSON.items() if k in ("cardNo", "employeeNoString", "name")},
    )
    pushed["dateTime"] = "2024-08-26T12:40:01+01:00"
    pushed["AccessControllerEvent"].pop("cardReaderKind")
    assert only_event(push(pushed))["ts"] == first["ts"]
    assert only_event(push(pushed))["seq"] == first["seq"]


def test_search_answer_last_page_and_bad_answers() -> None:
    last = {"AcsEvent": {"searchID": "x", "responseStatusStrg": "OK", "InfoList": []}}
    page = hikvision.parse_search(orjson.dumps(last), {})
    assert (page.messages, page.more, page.total) == ((), False, None)
    no_match = {"AcsEvent": {"searchID": "x", "responseStatusStrg": "NO MATCH"}}
    assert hikvision.parse_search(orjson.dumps(no_match), {}).messages == ()
    for bad in ({"AcsEvent": []}, {"other": 1}, {"AcsEvent": {"InfoList": {}}}):
        with pytest.raises(Rejected) as exc:
            hikvision.parse_search(orjson.dumps(bad), {})
        assert exc.value.reason == "bad_search_response"


def test_serial_gap() -> None:
    assert hikvision.serial_gap(None, 261) is None
    assert hikvision.serial_gap(257, 258) is None
    assert hikvision.serial_gap(257, 257) is None
    assert hikvision.serial_gap(257, 12) is None  # reset controller
    assert hikvision.serial_gap(257, 261) == (258, 260)
    assert hikvision.serial_gap(257, 10_000, max_gap=100) == (9_900, 9_999)


def test_search_request_for_a_serial_gap_and_a_time_range() -> None:
    zone = timezone(timedelta(hours=8))
    path, content_type, body = hikvision.search_request(
        "gap-258-261",
        first_serial=258,
        last_serial=260,
        start=datetime(2024, 8, 26, 19, 0, tzinfo=zone),
        end=datetime(2024, 8, 26, 20, 0, tzinfo=zone),
    )
    assert path == "/ISAPI/AccessControl/AcsEvent?format=json"
    assert content_type == "application/json"
    assert orjson.loads(body) == {
        "AcsEventCond": {
            "searchID": "gap-258-261",
            "searchResultPosition": 0,
            "maxResults": 30,
            "major": 0,
            "minor": 0,
            "startTime": "2024-08-26T19:00:00+08:00",
            "endTime": "2024-08-26T20:00:00+08:00",
            "beginSerialNo": 258,
            "endSerialNo": 260,
        }
    }
    _, _, page_2 = hikvision.search_request("s", position=30, first_serial=1, major=5)
    assert orjson.loads(page_2)["AcsEventCond"] == {
        "searchID": "s",
        "searchResultPosition": 30,
        "maxResults": 30,
        "major": 5,
        "minor": 0,
        "beginSerialNo": 1,
    }
    with pytest.raises(ValueError, match="range"):
        hikvision.search_request("s")
    with pytest.raises(ValueError, match="offset"):
        hikvision.search_request("s", start=datetime(2024, 8, 26, 19, 0))


def test_remote_door_request() -> None:
    assert hikvision.remote_door_request(1) == (
        "PUT",
        "/ISAPI/AccessControl/RemoteControl/door/1",
        "application/xml",
        b"<RemoteControlDoor><cmd>open</cmd></RemoteControlDoor>",
    )
    assert hikvision.remote_door_request(2, "close")[3] == (
        b"<RemoteControlDoor><cmd>close</cmd></RemoteControlDoor>"
    )
    for door, cmd in ((0, "open"), (True, "open"), (1, "alwaysOpen<x/>")):
        with pytest.raises(ValueError):
            hikvision.remote_door_request(door, cmd)


def test_response_status() -> None:
    ok = hikvision.parse_response_status("application/xml; charset=UTF-8", p.HIK_RESPONSE_OK)
    assert ok == hikvision.ResponseStatus(True, 1, "OK", "ok")
    refused = hikvision.parse_response_status("application/xml", p.HIK_RESPONSE_REFUSED)
    assert refused == hikvision.ResponseStatus(False, 4, "Invalid Operation", "invalidOperation")
    as_json = b'{"statusCode": 1, "statusString": "OK", "subStatusCode": "ok"}'
    assert hikvision.parse_response_status("application/json", as_json).ok is True
    with pytest.raises(Rejected) as exc:
        hikvision.parse_response_status("application/xml", p.EXTERNAL_ENTITY)
    assert exc.value.reason == "xml_forbidden"
