"""Hikvision ANPR cameras: plate reads to vehicle_entered / vehicle_exited."""

from __future__ import annotations

import pytest

from devices.adapters import anpr
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as p

MAC = "bc:5e:33:62:2a:5c"


def test_detected_plate_alone() -> None:
    got = anpr.decode("application/xml", p.ANPR_DETECTED, {})
    assert got.as_json() == {
        "adapter": "hikvision-anpr",
        "source": MAC,
        "class": "parking",
        "messages": [
            {
                "kind": "event",
                "event": "vehicle_entered",
                "attrs": {
                    "plate": "KH35192",
                    "confidence": 100,
                    "lane": 1,
                    "direction": "forward",
                    "vehicle_type": "vehicle",
                    "vehicle_color": "white",
                    "list": "otherList",
                    "original_plate": "KH35192",
                    "channel": 1,
                    "event_id": "20230811134901822007gWpiNIuI14ikdwfKR5eDCzuV45RubEmi88qaD5w0YTq",
                    "retransmitted": False,
                },
                "ts": 1_691_758_140_000,  # 2023-08-11T13:49:00+01:00
            }
        ],
    }
    assert got.identity == MAC
    assert got.pictures == ()


def test_detected_plate_with_its_pictures() -> None:
    body = p.anpr_multipart(p.ANPR_DETECTED)
    got = anpr.decode('multipart/form-data; boundary="boundary"', body, {})
    assert got.messages[0].attrs["plate"] == "KH35192"
    assert [(x.name, x.content_type, x.data) for x in got.pictures] == [
        ("licensePlatePicture.jpg", "image/jpeg", p.JPEG),
        # sent as application/octet-stream: recognised as a JPEG by its first bytes
        ("vehiclePicture.jpg", "image/jpeg", p.JPEG_2),
    ]


def test_unknown_plate_is_null_and_reverse_is_the_other_way() -> None:
    got = anpr.decode("text/xml", p.ANPR_UNKNOWN, {})
    message = got.messages[0]
    assert message.event == "vehicle_exited"
    assert message.attrs["plate"] is None
    assert "plate_color" not in message.attrs  # "unknown" colour: no colour
    assert "original_plate" not in message.attrs
    assert message.attrs["confidence"] == 0
    assert message.attrs["direction"] == "reverse"
    assert message.attrs["vehicle_type"] == "SUVMPV"
    assert message.ts_ms == 1_691_758_955_000  # 2023-08-11T14:02:35+01:00


@pytest.mark.parametrize(
    ("forward", "detected", "unknown"),
    [("entry", "vehicle_entered", "vehicle_exited"), ("exit", "vehicle_exited", "vehicle_entered")],
)
def test_forward_option_maps_the_mounting(forward: str, detected: str, unknown: str) -> None:
    options = {"forward": forward}
    assert anpr.decode("text/xml", p.ANPR_DETECTED, options).messages[0].event == detected
    assert anpr.decode("text/xml", p.ANPR_UNKNOWN, options).messages[0].event == unknown
    no_direction = p.ANPR_DETECTED.replace(b"<direction>forward</direction>", b"")
    assert anpr.decode("text/xml", no_direction, options).messages[0].event == detected


def test_lane_no_plate_colour_and_other_namespace() -> None:
    xml = (
        p.ANPR_DETECTED.replace(b"<line>1</line>", b"<laneNo>3</laneNo>")
        .replace(b"<plateColor>unknown</plateColor>", b"<plateColor>blue</plateColor>")
        .replace(
            b"http://www.hikvision.com/ver20/XMLSchema", b"http://www.isapi.org/ver20/XMLSchema"
        )
        .replace(
            b"<confidenceLevel>100</confidenceLevel>", b"<confidenceLevel>87.5</confidenceLevel>"
        )
    )
    attrs = anpr.decode("application/xml", xml, {}).messages[0].attrs
    assert (attrs["lane"], attrs["plate_color"], attrs["confidence"]) == (3, "blue", 87.5)


def test_non_ascii_plate_kept_as_unicode() -> None:
    xml = p.ANPR_DETECTED.replace(b"KH35192", "京A12345".encode())
    assert anpr.decode("application/xml", xml, {}).messages[0].attrs["plate"] == "京A12345"


def test_heartbeat_and_other_alerts_ignored() -> None:
    got = anpr.decode("application/xml", p.ANPR_HEARTBEAT, {})
    assert (got.ignored, got.messages, got.identity) == ("heartbeat", (), "c0:6d:ed:02:d3:d9")
    vmd = p.ANPR_HEARTBEAT.replace(b"videoloss</eventType>", b"VMD</eventType>")
    assert anpr.decode("application/xml", vmd, {}).ignored == "not_anpr_event"


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/xml", b"<ResponseStatus/>", "not_event_alert"),
        (
            "application/xml",
            b"<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>",
            "no_anpr",
        ),
        ("application/xml", b"<EventNotificationAlert><ANPR>", "not_xml"),
        ("application/json", b'{"eventType": "ANPR"}', "not_xml"),
        ("application/xml", p.BILLION_LAUGHS, "xml_forbidden"),
        ("application/xml", p.EXTERNAL_ENTITY, "xml_forbidden"),
        ("application/xml", p.PARAMETER_ENTITY, "xml_forbidden"),
        ("application/xml", p.EXTERNAL_DTD, "xml_forbidden"),
        ("application/xml", b"<a>" * 40 + b"</a>" * 40, "too_deep"),
    ],
)
def test_rejected(content_type: str, body: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        anpr.decode(content_type, body, {})
    assert exc.value.reason == reason


def test_bad_forward_option() -> None:
    with pytest.raises(Rejected) as exc:
        anpr.decode("application/xml", p.ANPR_DETECTED, {"forward": "north"})
    assert exc.value.reason == "bad_option"


def test_bomb_in_a_multipart_part_is_refused_too() -> None:
    body = p.anpr_multipart(p.BILLION_LAUGHS)
    with pytest.raises(Rejected) as exc:
        anpr.decode("multipart/form-data; boundary=boundary", body, {})
    assert exc.value.reason == "xml_forbidden"
