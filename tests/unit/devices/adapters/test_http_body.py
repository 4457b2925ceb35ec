"""The shared body reader of the HTTP adapters: size bounds, multipart, safe XML."""

from __future__ import annotations

import time

import pytest

from devices.adapters import httpbody
from devices.adapters.http import HTTP_ADAPTERS, HTTP_REASONS
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as p


def reason_of(content_type: str, body: bytes, options: dict[str, str] | None = None) -> str:
    with pytest.raises(Rejected) as exc:
        httpbody.split_body(content_type, body, options or {})
    return exc.value.reason


def test_registry_names_every_http_adapter_once_and_sorted() -> None:
    assert list(HTTP_ADAPTERS) == ["2n-lpr", "hikvision", "hikvision-anpr", "vzenith"]
    assert all(a.name == name and a.transport == "http" for name, a in HTTP_ADAPTERS.items())
    assert [n for n, a in HTTP_ADAPTERS.items() if a.reply is not None] == ["2n-lpr", "vzenith"]
    assert len(HTTP_REASONS) == len(set(HTTP_REASONS))


def test_size_limit_default_and_option() -> None:
    assert httpbody.max_body_bytes({}) == 4 * 1024 * 1024
    big = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    assert reason_of("application/json", big) == "too_large"
    assert reason_of("application/json", b'{"a": 1}', {"max_body_bytes": "7"}) == "too_large"
    assert httpbody.split_body("application/json", b'{"a":1}', {"max_body_bytes": "7"}).document
    assert reason_of("application/json", b"{}", {"max_body_bytes": "lots"}) == "bad_option"
    assert reason_of("application/json", b"{}", {"max_body_bytes": "0"}) == "bad_option"


def test_every_adapter_refuses_an_oversized_body_before_reading_it() -> None:
    for adapter in HTTP_ADAPTERS.values():
        with pytest.raises(Rejected) as exc:
            adapter.decode("application/json", b"{" + b" " * 100 + b"}", {"max_body_bytes": "64"})
        assert exc.value.reason == "too_large"


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/json", b"", "empty"),
        ("application/json", b" \r\n", "empty"),
        ("image/jpeg", p.JPEG, "no_document"),
        ("text/plain", b"hello", "no_document"),
        ("application/json\r\nX-Injected: 1", b"{}", "bad_content_type"),
        ("multipart/form-data", b"--x\r\n\r\n{}\r\n--x--", "bad_multipart"),
        ("multipart/form-data; boundary=other", b"--x\r\n\r\n{}\r\n--x--", "bad_multipart"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Type: image/jpeg\r\n\r\n" + p.JPEG + b"\r\n--x--",
            "no_document",
        ),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n"
            b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n--x--",
            "two_documents",
        ),
        (
            "multipart/form-data; boundary=x",
            b"".join(
                b"--x\r\nContent-Type: image/jpeg\r\n\r\n" + p.JPEG + b"\r\n" for _ in range(17)
            )
            + b"--x--",
            "too_many_parts",
        ),
    ],
)
def test_bodies_refused(content_type: str, body: bytes, reason: str) -> None:
    assert reason_of(content_type, body) == reason


def test_multipart_of_line_breaks_refused_before_the_line_based_parser() -> None:
    body = b"--x\r\nContent-Type: image/jpeg\r\n\r\n" + b"\n" * 200_000 + b"\r\n--x--\r\n"
    started = time.perf_counter()
    assert reason_of("multipart/form-data; boundary=x", body) == "bad_multipart"
    assert time.perf_counter() - started < 0.05


def test_multipart_form_field_beside_the_event_is_not_an_event() -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="channel"\r\n\r\nlane one\r\n'
        b'--x\r\nContent-Disposition: form-data; name="event"\r\n\r\n{"a": 1}\r\n'
        b'--x\r\nContent-Disposition: form-data; name="pic"\r\n'
        b"Content-Transfer-Encoding: base64\r\nContent-Type: image/jpeg\r\n\r\n"
        b"/9j/4AA=\r\n--x--\r\n"
    )
    got = httpbody.split_body("multipart/form-data; boundary=x", body, {})
    assert (got.kind, got.document) == ("json", b'{"a": 1}')
    assert [(x.content_type, x.data, x.name) for x in got.pictures] == [
        ("image/jpeg", b"\xff\xd8\xff\xe0\x00", "pic")  # no filename: the form field's name
    ]


@pytest.mark.parametrize(
    "bomb", [p.BILLION_LAUGHS, p.EXTERNAL_ENTITY, p.PARAMETER_ENTITY, p.EXTERNAL_DTD]
)
def test_xml_attacks_refused_unexpanded_and_fast(bomb: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(Rejected) as exc:
        httpbody.load_xml(bomb)
    assert exc.value.reason == "xml_forbidden"
    assert exc.value.detail == "doctype refused"
    assert time.perf_counter() - started < 0.5  # refused at the DOCTYPE, nothing expanded


def test_quadratic_blowup_without_doctype_is_plain_text() -> None:
    # no DOCTYPE, so no entity: a long text is just a long text, bounded by the body size
    root = httpbody.load_xml(b"<a>" + b"x" * 100_000 + b"</a>")
    assert root.text is not None and len(root.text) == 100_000


def test_xml_namespaces_are_dropped_and_undefined_entities_refused() -> None:
    root = httpbody.load_xml(b'<a xmlns="urn:x"><b xmlns="urn:y">1</b></a>')
    assert (root.tag, root.find("b").text) == ("a", "1")  # type: ignore[union-attr]
    with pytest.raises(Rejected) as exc:
        httpbody.load_xml(b"<a>&undefined;</a>")
    assert exc.value.reason == "not_xml"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100", 100),
        ("87.5", 87.5),
        (" 3 ", 3),
        (2.0, 2),
        (True, None),
        ("nan", None),
        ("1e400", None),
        ("", None),
        (None, None),
        (2**70, None),
    ],
)
def test_vendor_numbers(value: object, expected: object) -> None:
    assert httpbody.number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-08-26T12:32:28+01:00", 1_724_671_948_000),
        ("2024-08-26T11:32:28Z", 1_724_671_948_000),
        ("2024-08-26T12:32:28", None),
        ("26/08/2024", None),
        (1_724_671_948, None),
    ],
)
def test_vendor_times(value: object, expected: int | None) -> None:
    assert httpbody.iso_ms(value) == expected
