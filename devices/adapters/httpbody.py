"""What every HTTP-push adapter shares: the body split into its event document and its
pictures, JSON and XML read safely, vendor times and numbers read leniently.

Pure and bounded: a body above ``max_body_bytes`` (an adapter option) is refused before it
is read, a multipart body holds at most :data:`MAX_PARTS` parts, and XML is read with the
standard library's expat parser with every document type declaration refused. Refusing the
DOCTYPE outright is what keeps the entity attacks out (billion laughs, external entities,
parameter entities): an entity can only be declared inside one, and no device we read sends
one. ``defusedxml`` does the same with more code and one more dependency; expat alone is
enough here because we never need a DTD.
"""

from __future__ import annotations

import binascii
import email
import email.message
import math
from base64 import b64decode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

import orjson

from devices.adapters.base import Options, Picture
from devices.model import Rejected

DocumentKind = Literal["json", "xml"]

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Default bound of a pushed body: a JSON or XML event with two or three JPEG snapshots of a
few hundred KiB each (a plate crop and a whole vehicle); option ``max_body_bytes``."""
LINE_BYTES = 64
"""A multipart body may hold one line break per this many bytes on average. The standard
library's email parser is line-based: a body of nothing but line breaks costs it ~0.55 us a
line (2.1 s for 4 MiB here), while a JPEG, random-looking bytes, has one per 256 bytes (a
4 MiB push takes ~0.16 s, about 40 ms per MiB). The bound keeps the worst case near the
ordinary one."""
MAX_PARTS = 16
"""A multipart push carries one document and a few pictures; more is not a device."""
MAX_XML_DEPTH = 32
"""ANPR documents nest 5 levels deep; far deeper is not a camera's document."""
MAX_TEXT = 256
"""Longest plate, card number, name or identity kept from a body."""

REASONS = (
    *("too_large", "empty", "bad_option", "bad_content_type", "bad_multipart"),
    *("too_many_parts", "no_document", "two_documents", "not_json", "not_xml"),
    *("xml_forbidden", "too_deep", "not_object"),
)
"""Every reason code the helpers of this module may raise."""

_JSON_TYPES = frozenset(("application/json", "text/json"))
_XML_TYPES = frozenset(("application/xml", "text/xml"))
_MULTIPART = frozenset(("multipart/form-data", "multipart/mixed", "multipart/related"))
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
"""Picture parts sent as ``application/octet-stream`` are recognised by their first bytes."""
_BAD_MULTIPART_DEFECTS = ("NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect")


@dataclass(frozen=True, slots=True)
class Body:
    """A pushed body taken apart: the event ``document`` (JSON or XML bytes) and the
    pictures that came beside it."""

    kind: DocumentKind
    document: bytes
    pictures: tuple[Picture, ...] = ()


def max_body_bytes(options: Options, default: int = MAX_BODY_BYTES) -> int:
    """The ``max_body_bytes`` option, a positive integer, else ``default``."""
    text = options.get("max_body_bytes")
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Rejected("bad_option", "max_body_bytes: not an integer") from None
    if value <= 0:
        raise Rejected("bad_option", "max_body_bytes: not positive")
    return value


def media_type(content_type: str) -> str:
    """``type/subtype`` of a Content-Type header, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _sniff(data: bytes) -> DocumentKind | None:
    """JSON or XML by the first byte that is not white space (after a UTF-8 BOM)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head in (b"{", b"[") else "xml" if head == b"<" else None


def _declared(media: str) -> DocumentKind | None:
    if media in _JSON_TYPES or media.endswith("+json"):
        return "json"
    if media in _XML_TYPES or media.endswith("+xml"):
        return "xml"
    return None


def split_body(content_type: str, body: bytes, options: Options) -> Body:
    """The event document and the pictures of one pushed body.

    JSON and XML are taken as declared; ``multipart/*`` is read with the standard library's
    email parser, its first JSON or XML part being the document and its image parts (or
    octet streams that start like a JPEG or PNG) the pictures; any other declared type (some
    cameras send ``text/plain`` or form encoding) is recognised by its first byte.
    """
    if len(body) > max_body_bytes(options):
        raise Rejected("too_large", f"{len(body)} bytes")
    if not body.strip():
        raise Rejected("empty")
    if not content_type.isprintable():
        raise Rejected("bad_content_type", "control characters")
    media = media_type(content_type)
    if media in _MULTIPART:
        if body.count(b"\n") > max(1024, len(body) // LINE_BYTES):
            raise Rejected("bad_multipart", "more line breaks than pictures and documents have")
        return _split_multipart(content_type, body)
    kind = _declared(media) or _sniff(body)
    if kind is None:
        raise Rejected("no_document", f"{media or 'no content type'}: neither JSON nor XML")
    return Body(kind, body)


def _split_multipart(content_type: str, body: bytes) -> Body:
    # The email parser needs the boundary from the header: the header is prepended as the
    # message's only header (split_body refused control characters, so nothing is injected).
    header = b"Content-Type: " + content_type.encode("utf-8", "replace") + b"\r\n\r\n"
    message = email.message_from_bytes(header + body)
    if not message.is_multipart() or any(
        type(d).__name__ in _BAD_MULTIPART_DEFECTS for d in message.defects
    ):
        raise Rejected("bad_multipart", "no boundary, or no part found")
    parts = message.get_payload()
    if not isinstance(parts, list) or not parts:
        raise Rejected("bad_multipart", "no part found")
    if len(parts) > MAX_PARTS:
        raise Rejected("too_many_parts", f"{len(parts)} parts")
    document: tuple[DocumentKind, bytes] | None = None
    pictures: list[Picture] = []
    for part in parts:
        if not isinstance(part, email.message.Message) or part.is_multipart():
            continue  # a nested multipart is no device's; its bytes are not an event
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data.strip():
            continue
        media = part.get_content_type()
        picture_type = media if media.startswith("image/") else _magic(data)
        if picture_type:
            pictures.append(Picture(picture_type, data, _part_name(part)))
            continue
        kind = _declared(media) or _sniff(data)
        if kind is None:
            continue  # a plain form field beside the event is not the event
        if document is not None:
            raise Rejected("two_documents", "more than one JSON or XML part")
        document = (kind, data)
    if document is None:
        raise Rejected("no_document", "no JSON or XML part")
    return Body(document[0], document[1], tuple(pictures))


def _magic(data: bytes) -> str:
    return next((media for magic, media in _MAGIC if data.startswith(magic)), "")


def _part_name(part: email.message.Message) -> str:
    name = part.get_filename() or part.get_param("name", header="content-disposition")
    return name[:MAX_TEXT] if isinstance(name, str) else ""


def load_json(data: bytes) -> dict[str, Any]:
    """A JSON object, or ``Rejected("not_json" | "not_object")``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Rejected("not_json", str(exc)[:120]) from None
    if not isinstance(value, dict):
        raise Rejected("not_object", type(value).__name__)
    return value


class _Forbidden(Exception):
    """Raised from inside expat's handlers: a DOCTYPE or an entity declaration."""


def _forbid(what: str) -> Callable[..., None]:
    def handler(*_args: object) -> None:
        raise _Forbidden(what)

    return handler


def _refuse_external(*_args: object) -> int:
    raise _Forbidden("external entity")


def load_xml(data: bytes) -> Element:
    """The XML document's root, tags without their namespace (Hikvision uses ver10 and
    ver20 namespaces of two domains for the same elements).

    Refused: any DOCTYPE (so no entity can be declared, hence no expansion and no external
    fetch) as ``xml_forbidden``; malformed XML as ``not_xml``; nesting deeper than
    :data:`MAX_XML_DEPTH` as ``too_deep``.
    """
    builder = TreeBuilder()
    depth = 0

    def start(tag: str, _attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise _Forbidden("depth")
        builder.start(tag.rpartition(" ")[2], {})

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag.rpartition(" ")[2])

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid("doctype")
    parser.EntityDeclHandler = _forbid("entity")
    parser.UnparsedEntityDeclHandler = _forbid("entity")
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except _Forbidden as exc:
        if str(exc) == "depth":
            raise Rejected("too_deep", f"deeper than {MAX_XML_DEPTH}") from None
        raise Rejected("xml_forbidden", f"{exc} refused") from None
    except (expat.ExpatError, ValueError, LookupError) as exc:
        # ValueError/LookupError: an encoding named in the XML declaration that is unknown
        raise Rejected("not_xml", str(exc)[:120]) from None
    return builder.close()


def text(value: Any) -> str:
    """A vendor string field, stripped and bounded; ``""`` for anything not a string."""
    return value.strip()[:MAX_TEXT] if isinstance(value, str) else ""


def number(value: Any) -> int | float | None:
    """A vendor number (JSON number or numeric text such as ``"100"`` or ``"87.5"``): an
    ``int`` when integral, a finite ``float`` otherwise, ``None`` when not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped or len(stripped) > 32:
            return None
        try:
            value = float(stripped)
        except ValueError:
            return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    return None


def integer(value: Any) -> int | None:
    """A vendor integer (JSON integer or decimal text), ``None`` otherwise."""
    got = number(value)
    return got if isinstance(got, int) else None


def iso_ms(value: Any) -> int | None:
    """Epoch ms of an ISO-8601 time with an offset (``2024-08-26T12:32:28+01:00``);
    ``None`` for a missing, malformed or local time (the hub then uses its receive time:
    a device's local time without an offset is not a point in time)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    return int(moment.timestamp() * 1000)


def mac(value: Any) -> str:
    """A MAC address in lower case with colons (``bc:5e:33:62:2a:5c``); ``""`` when the
    value is not one (12 hex digits, with or without ``:`` or ``-`` separators)."""
    digits = text(value).lower().replace(":", "").replace("-", "")
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        return ""
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def lane_option(options: Options) -> int | str | None:
    """The ``lane`` option of a camera that watches one lane: an integer when it is one."""
    lane = options.get("lane", "").strip()
    if not lane:
        return None
    return int(lane) if lane.isascii() and lane.isdigit() else lane


def base64_pictures(
    fields: Mapping[str, Any], table: tuple[tuple[str, str], ...]
) -> tuple[tuple[Picture, ...], tuple[str, ...]]:
    """The base64 images of a JSON body (Vzenith, 2N): ``table`` pairs each field with the
    name its picture gets. Returns the pictures and the fields that were not base64: a
    broken picture does not cost the plate read it came with (the adapter names the
    fields in the event instead), and empty or absent fields are no picture."""
    pictures: list[Picture] = []
    broken: list[str] = []
    for key, name in table:
        value = fields.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            # line breaks are allowed (some encoders wrap at 76 characters), nothing else
            data = b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            broken.append(key)
            continue
        if data:
            pictures.append(Picture(_magic(data) or "application/octet-stream", data, name))
    return tuple(pictures), tuple(broken)
