"""Property tests: no body makes an HTTP adapter raise anything but Rejected, with a known
reason; what it accepts is JSON-printable and its reply (if any) can be built."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.adapters.base import Adapted, Adapter
from devices.adapters.http import HTTP_ADAPTERS, HTTP_REASONS
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as p

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ADAPTERS = pytest.mark.parametrize("name", sorted(HTTP_ADAPTERS))

BOUNDARY = "bNd-7x"
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/xml",
            "text/xml",
            "text/plain",
            "",
            "image/jpeg",
            "application/x-www-form-urlencoded",
            f"multipart/form-data; boundary={BOUNDARY}",
            "multipart/form-data",
            "multipart/mixed; boundary=",
        ]
    ),
    st.text(max_size=40),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            # hikvision
            *("macAddress", "dateTime", "eventType", "AccessControllerEvent", "majorEventType"),
            *("subEventType", "serialNo", "cardNo", "employeeNoString", "name", "userType"),
            *("doorNo", "cardReaderNo", "cardType", "AcsEvent", "InfoList", "major", "minor"),
            # vzenith
            *("AlarmInfoPlate", "serialno", "result", "PlateResult", "license", "colorType"),
            *("confidence", "triggerType", "plateid", "timeStamp", "Timeval", "sec", "usec"),
            *("imageFile", "imageFragmentFile", "direction", "isoffline"),
            # 2n
            *("lprUuid", "lprID", "accessPoint", "plateText", "plateImage", "lprDir"),
        ]
    ),
    st.text(max_size=8),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=16),
    st.sampled_from(["2024-08-26T12:32:28+01:00", "unknown", "", "/9j/4AA=", "%%", "MORE"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=25,
)
TAGS = st.sampled_from(
    [
        *("EventNotificationAlert", "eventType", "ANPR", "licensePlate", "line", "laneNo"),
        *("direction", "confidenceLevel", "plateColor", "vehicleInfo", "color", "macAddress"),
        *("dateTime", "channelID", "UUID", "isDataRetransmission", "ResponseStatus"),
        *("statusCode", "x"),
    ]
)
XML_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=12),
    st.sampled_from(
        ["ANPR", "unknown", "forward", "reverse", "100", "&amp;", "&lol;", "videoloss"]
    ),
)
XMLISH = st.recursive(
    XML_TEXT,
    lambda inner: st.builds(
        lambda tag, kids: f"<{tag}>{''.join(kids)}</{tag}>", TAGS, st.lists(inner, max_size=4)
    ),
    max_leaves=20,
)
XML_PROLOGS = st.sampled_from(
    [
        "",
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<?xml version="1.0" encoding="x-unknown"?>',
        '<!DOCTYPE a [<!ENTITY lol "lol">]>',
        '<!DOCTYPE a SYSTEM "http://203.0.113.1/a.dtd">',
    ]
)


def _document(value: Any) -> bytes:
    # the standard library writes integers beyond 64 bits too, which the adapters must refuse
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _envelopes(value: Any) -> list[bytes]:
    """The random value alone and inside each adapter's own envelope."""
    return [
        _document(value),
        _document({**p.HIK_LOCK_OPEN, "AccessControllerEvent": value}),
        _document({"AcsEvent": {"InfoList": [value]}}),
        _document({"AlarmInfoPlate": {"serialno": "s", "result": {"PlateResult": value}}}),
        _document({**p.LPR_2N_ENTRY, **value} if isinstance(value, dict) else value),
    ]


def check(adapter: Adapter, content_type: str, body: bytes, options: dict[str, str]) -> None:
    try:
        got = adapter.decode(content_type, body, options)
    except Rejected as exc:
        assert exc.reason in HTTP_REASONS, exc.reason
        return
    assert isinstance(got, Adapted)
    assert got.adapter == adapter.name
    assert isinstance(got.identity, str) and isinstance(got.source, str)
    assert bool(got.ignored) != bool(got.messages)
    orjson.dumps(got.as_json())  # every attribute is printable as JSON
    for picture in got.pictures:
        assert isinstance(picture.data, bytes) and picture.data
    if adapter.reply is not None:
        content, reply = adapter.reply(got)
        assert content == "application/json" and orjson.loads(reply)


def multipart(parts: list[tuple[str, bytes]], boundary: str = BOUNDARY) -> bytes:
    b = boundary.encode()
    chunks = [b"--" + b + b"\r\n" + h.encode() + b"\r\n\r\n" + data + b"\r\n" for h, data in parts]
    return b"".join(chunks) + b"--" + b + b"--\r\n"


@ADAPTERS
@FAST
@given(content_type=CONTENT_TYPES, body=st.binary(max_size=400))
def test_random_bytes(name: str, content_type: str, body: bytes) -> None:
    check(HTTP_ADAPTERS[name], content_type, body, {})


@ADAPTERS
@FAST
@given(content_type=CONTENT_TYPES, value=JSONISH)
def test_random_json(name: str, content_type: str, value: Any) -> None:
    for body in _envelopes(value):
        check(HTTP_ADAPTERS[name], content_type, body, {})


@ADAPTERS
@FAST
@given(
    content_type=st.sampled_from(["application/xml", "text/xml", "", "application/json"]),
    prolog=XML_PROLOGS,
    xml=XMLISH,
    mac=st.sampled_from(["", "<macAddress>bc:5e:33:62:2a:5c</macAddress>"]),
)
def test_random_xml(name: str, content_type: str, prolog: str, xml: str, mac: str) -> None:
    for body in (
        prolog + xml,
        f"{prolog}<EventNotificationAlert>{mac}{xml}</EventNotificationAlert>",
    ):
        check(HTTP_ADAPTERS[name], content_type, body.encode("utf-8", "surrogatepass"), {})


PART_HEADERS = st.sampled_from(
    [
        "Content-Type: application/json",
        "Content-Type: text/xml",
        "Content-Type: image/jpeg",
        'Content-Disposition: form-data; name="Picture"; filename="Picture.jpg"',
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64",
        "Content-Type: multipart/mixed; boundary=inner",
        "Content-Disposition: form-data; name*=utf-8''%FF%FE; filename*=x'y'%ZZ",
        "Content-Type: image/jpeg; name*=bad'x'%E4%BD",
        "Content-Type: text/xml\r\nContent-Transfer-Encoding: quoted-printable",
        "Content-Type: image/png\r\nContent-Transfer-Encoding: x-uuencode",
        "Content-Type: application/json; charset=utf-7",
        "",
    ]
)
PART_BODIES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            p.JPEG,
            orjson.dumps(p.HIK_CARD_PASS),
            orjson.dumps(p.VZ_PLATE),
            orjson.dumps(p.LPR_2N_ENTRY),
            p.ANPR_DETECTED,
            p.BILLION_LAUGHS,
            b"/9j/4AA=",
            b"--inner\r\n\r\n{}\r\n--inner--",
        ]
    ),
)


@ADAPTERS
@FAST
@given(
    parts=st.lists(
        st.tuples(st.one_of(PART_HEADERS, st.text(max_size=30)), PART_BODIES), max_size=5
    ),
    content_type=st.sampled_from(
        [f"multipart/form-data; boundary={BOUNDARY}", f'multipart/mixed; boundary="{BOUNDARY}"']
    ),
    options=st.sampled_from([{}, {"max_body_bytes": "600"}, {"forward": "exit", "role": "exit"}]),
)
def test_random_multipart(
    name: str, parts: list[tuple[str, bytes]], content_type: str, options: dict[str, str]
) -> None:
    check(HTTP_ADAPTERS[name], content_type, multipart(parts), options)


@ADAPTERS
@FAST
@given(
    options=st.dictionaries(
        st.sampled_from(["max_body_bytes", "forward", "role", "lane", "held_open_seconds"]),
        st.text(max_size=8),
    )
)
def test_random_options(name: str, options: dict[str, str]) -> None:
    for body in (
        orjson.dumps(p.HIK_DOOR_HELD),
        p.ANPR_DETECTED,
        orjson.dumps(p.VZ_PLATE),
        orjson.dumps(p.LPR_2N_ENTRY),
    ):
        check(HTTP_ADAPTERS[name], "", body, options)
