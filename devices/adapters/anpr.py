"""Hikvision ANPR cameras: the pushed ``EventNotificationAlert`` XML with an ``ANPR`` element,
alone or as the XML part of a multipart body next to its JPEGs (plate crop, vehicle).

One read is one ``vehicle_entered`` or ``vehicle_exited`` on the parking class. The camera
says ``forward`` or ``reverse`` (the vehicle's direction relative to the camera), which is
entry or exit only by how the camera is mounted: option ``forward`` (``entry``, the
default, or ``exit``) says which; ``reverse`` is the other one, and a read without a
direction (``unknown``) counts as ``forward``, the direction the camera was set up to face.
The camera's own word stays in the ``direction`` attribute.

``licensePlate`` ``unknown`` (or empty) is the camera's "no plate read": ``plate`` is null.
Sources: two recordings of a real camera in maciej-or/hikvision_next
``tests/fixtures/ISAPI/EventNotificationAlert/ipc1_anpr_plate_{detected,unknown}.xml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from xml.etree.ElementTree import Element

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.httpbody import integer, iso_ms, load_xml, mac, number, split_body, text
from devices.model import Rejected

NAME = "hikvision-anpr"

REASONS = ("not_event_alert", "no_anpr")
"""Reasons of this module, beside those of :mod:`devices.adapters.httpbody`."""

NO_PLATE = frozenset(("", "unknown"))
"""Plate texts that mean "no plate read"; never a plate."""

EVENTS: Mapping[str, str] = {"entry": "vehicle_entered", "exit": "vehicle_exited"}
OPPOSITE: Mapping[str, str] = {"entry": "exit", "exit": "entry"}
IGNORED: Mapping[str, str] = {"videoloss": "heartbeat"}
"""``eventType`` of alerts that are not ANPR reads to their stable ignored reason (cameras
send ``videoloss`` with state ``inactive`` as their heartbeat); any other is
``not_anpr_event``."""


def _known(value: str) -> str | None:
    """The vendor's text, ``None`` for its "not known" (``unknown`` or empty)."""
    return None if value.lower() in NO_PLATE else value


def _bool(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.lower())


ATTRS: tuple[tuple[str, tuple[str, ...], Callable[[str], Any]], ...] = (
    ("plate", ("licensePlate",), _known),
    ("plate_color", ("plateColor",), _known),
    ("confidence", ("confidenceLevel",), number),
    ("lane", ("laneNo", "line"), integer),
    ("direction", ("direction",), _known),
    ("vehicle_type", ("vehicleType",), _known),
    ("vehicle_color", ("vehicleInfo/color",), _known),
    ("list", ("vehicleListName",), _known),
    ("original_plate", ("originalLicensePlate",), _known),
)
"""Attribute name, the ``ANPR`` child elements it is read from (first present wins: the
recorded camera names the lane ``line``, other firmware ``laneNo``), its converter. A
converter's ``None`` leaves the attribute out, except for ``plate``, which is always there
(null for no plate)."""
ALERT_ATTRS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("channel", "channelID", integer),
    ("event_id", "UUID", _known),
    ("retransmitted", "isDataRetransmission", _bool),
)
"""Attributes read from the alert around the ``ANPR`` element."""


def _child_text(parent: Element, path: str) -> str | None:
    found = parent.find(path)
    return None if found is None else text(found.text or "")


def _role(options: Options) -> str:
    role = options.get("forward", "entry")
    if role not in EVENTS:
        raise Rejected("bad_option", f"forward: {role!r} is not entry or exit")
    return role


def decode(content_type: str, body: bytes, options: Options) -> Adapted:
    """One pushed ANPR alert (XML, or the XML part of a multipart body with pictures)."""
    forward = _role(options)
    split = split_body(content_type, body, options)
    if split.kind != "xml":
        raise Rejected("not_xml", "ANPR cameras push XML")
    root = load_xml(split.document)
    if root.tag != "EventNotificationAlert":
        raise Rejected("not_event_alert", f"root element {root.tag[:40]!r}")
    identity = mac(_child_text(root, "macAddress"))
    event_type = _child_text(root, "eventType") or ""
    if event_type != "ANPR":
        ignored = IGNORED.get(event_type, "not_anpr_event")
        return Adapted(NAME, identity, "parking", ignored=ignored, identity=identity)
    anpr = root.find("ANPR")
    if anpr is None:
        raise Rejected("no_anpr", "eventType ANPR without an ANPR element")
    attrs: dict[str, Any] = {}
    for name, paths, convert in ATTRS:
        found = (_child_text(anpr, path) for path in paths)
        raw = next((t for t in found if t is not None), "")
        value = convert(raw)
        if value is not None or name == "plate":
            attrs[name] = value
    for name, tag, convert in ALERT_ATTRS:
        if (value := convert(_child_text(root, tag) or "")) is not None:
            attrs[name] = value
    role = OPPOSITE[forward] if attrs.get("direction") == "reverse" else forward
    message = AdaptedMessage(
        "event",
        event=EVENTS[role],
        attrs=attrs,
        ts_ms=iso_ms(_child_text(root, "dateTime")),
    )
    return Adapted(
        NAME, identity, "parking", (message,), identity=identity, pictures=split.pictures
    )


ADAPTER = Adapter(NAME, "http", decode)
