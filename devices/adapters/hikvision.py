"""Hikvision access controllers (ISAPI): pushed ``AccessControllerEvent`` documents, the
controller's own event log for gap filling, and the remote door open.

A controller posts an ``EventNotificationAlert`` JSON document, alone or as the JSON part of
a ``multipart/form-data`` body next to a JPEG (a face snapshot: kept as a picture). The
``AccessControllerEvent`` inside is keyed on its (major, minor) event code pair through
:data:`CODES`; the same minor number means different things under different majors. The
controller's ``serialNo`` becomes the message's ``seq`` (de-duplication and gap detection),
its ``macAddress`` the identity the body claims, ``dateTime`` the event time.

A code pair that :data:`CODES` does not name becomes the event ``other`` with its ``major``
and ``minor`` beside the usual attributes: nothing a controller says is dropped or
dead-lettered for being new to us, and its serial number still reaches the gap detector
(an ignored event would leave a hole that the gap filling would fetch again and again).

Sources: the codes are the HCNetSDK ``NET_DVR_ACS_ALARM_INFO`` macros as ported in
pergolafabio/Hikvision-Addons ``hikvision-doorbell/src/sdk/acsalarminfo.py``; the document's
fields are those of a real push quoted in pergolafabio/Hikvision-Addons#177; the search and
remote-control bodies are those of public ISAPI clients (see the ecosystem notes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.httpbody import (
    integer,
    iso_ms,
    load_json,
    load_xml,
    mac,
    number,
    split_body,
    text,
)
from devices.model import Rejected

NAME = "hikvision"

REASONS = ("bad_event_code", "bad_search_response")
"""Reasons of this module, beside those of :mod:`devices.adapters.httpbody`."""

IGNORED: Mapping[str, str] = {"heartBeat": "heartbeat"}
"""``eventType`` of documents without an ``AccessControllerEvent`` to their stable ignored
reason; any other is ``not_access_event`` (a camera-style event on the same listener)."""


@dataclass(frozen=True, slots=True)
class Code:
    """What one (major, minor) pair means: the contract's event and its fixed attributes
    (``method``, ``reason``, the part that was tampered with)."""

    event: str
    attrs: Mapping[str, str] = field(default_factory=dict)


def _granted(method: str) -> Code:
    return Code("access_granted", {"method": method})


def _denied(method: str, reason: str) -> Code:
    return Code("access_denied", {"method": method, "reason": reason})


ALARM, EXCEPTION, OPERATION, EVENT = 1, 2, 3, 5
"""Major classes of the SDK (``MAJOR_ALARM`` .. ``MAJOR_EVENT``)."""

CODES: Mapping[tuple[int, int], Code] = {
    # major 5, events: credentials presented (SDK MINOR_* names in the comments)
    (EVENT, 0x01): _granted("card"),  # LEGAL_CARD_PASS
    (EVENT, 0x02): _granted("card"),  # CARD_AND_PSW_PASS (card then PIN)
    (EVENT, 0x03): _denied("card", "other"),  # CARD_AND_PSW_FAIL (wrong PIN)
    (EVENT, 0x06): _denied("card", "no_permission"),  # CARD_NO_RIGHT
    (EVENT, 0x07): _denied("card", "outside_schedule"),  # CARD_INVALID_PERIOD
    (EVENT, 0x08): _denied("card", "expired"),  # CARD_OUT_OF_DATE
    (EVENT, 0x09): _denied("card", "unknown_credential"),  # INVALID_CARD
    (EVENT, 0x26): _granted("fingerprint"),  # FINGERPRINT_COMPARE_PASS
    (EVENT, 0x27): _denied("fingerprint", "other"),  # FINGERPRINT_COMPARE_FAIL
    (EVENT, 0x28): _granted("card"),  # CARD_FINGERPRINT_VERIFY_PASS
    (EVENT, 0x29): _denied("card", "other"),  # CARD_FINGERPRINT_VERIFY_FAIL
    (EVENT, 0x31): _denied("fingerprint", "unknown_credential"),  # FINGERPRINT_INEXISTENCE
    (EVENT, 0x3C): _granted("face"),  # FACE_AND_CARD_VERIFY_PASS
    (EVENT, 0x3D): _denied("face", "other"),  # FACE_AND_CARD_VERIFY_FAIL
    (EVENT, 0x4B): _granted("face"),  # FACE_VERIFY_PASS
    (EVENT, 0x4C): _denied("face", "other"),  # FACE_VERIFY_FAIL
    (EVENT, 0x50): _denied("face", "unknown_credential"),  # FACE_NO_EXIST
    (EVENT, 0x65): _granted("pin"),  # EMPLOYEENO_AND_PW_PASS
    (EVENT, 0x66): _denied("pin", "other"),  # EMPLOYEENO_AND_PW_FAIL
    # major 5, events: the lock, the door contact, the exit button, the bell
    (EVENT, 0x15): Code("door_unlocked"),  # LOCK_OPEN (the lock released; who: the pass before)
    (EVENT, 0x16): Code("door_locked"),  # LOCK_CLOSE
    (EVENT, 0x17): Code("door_unlocked", {"method": "button"}),  # DOOR_BUTTON_PRESS
    (EVENT, 0x19): Code("door_opened"),  # DOOR_OPEN_NORMAL (after a valid unlock)
    (EVENT, 0x1A): Code("door_closed"),  # DOOR_CLOSE_NORMAL
    (EVENT, 0x1B): Code("door_forced"),  # DOOR_OPEN_ABNORMAL (opened without an unlock)
    (EVENT, 0x1C): Code("door_held_open"),  # DOOR_OPEN_TIMEOUT
    (EVENT, 0x25): Code("intercom_call"),  # DOORBELL_RINGING
    # major 3, operations: the platform or an app opens or closes the door
    (OPERATION, 0x400): Code("door_unlocked", {"method": "remote"}),  # REMOTE_OPEN_DOOR
    (OPERATION, 0x401): Code("door_locked", {"method": "remote"}),  # REMOTE_CLOSE_DOOR
    # major 1, alarms: housings opened, duress
    (ALARM, 0x404): Code("tamper", {"part": "controller"}),  # HOST_DESMANTLE_ALARM
    (ALARM, 0x406): Code("tamper", {"part": "card_reader"}),  # CARD_READER_DESMANTLE_ALARM
    (ALARM, 0x408): Code("tamper", {"part": "case"}),  # CASE_SENSOR_ALARM
    (ALARM, 0x40A): Code("duress"),  # STRESS_ALARM
}
"""(major, minor) to the contract's event. A remote open is ``door_unlocked`` with method
``remote``: what the controller reports is the lock released on command; the door's own
``door_opened`` follows from its contact when someone walks through."""

OTHER = Code("other")
"""A pair not in :data:`CODES`: kept as the event ``other`` with ``major`` and ``minor``."""

_STRING_ATTRS: tuple[tuple[str, str], ...] = (
    ("cardNo", "credential"),
    ("employeeNoString", "person"),
    ("name", "person_name"),
    ("userType", "user_type"),
    ("currentVerifyMode", "verify_mode"),
)
"""Vendor string fields kept on every event, under the contract's names where it has one
(``person`` is the person's id on the controller; its display name is ``person_name``).
``currentVerifyMode`` is the door's configured mode, not the method used: kept apart."""
_INT_ATTRS: tuple[tuple[str, str], ...] = (
    ("doorNo", "door"),
    ("cardReaderNo", "reader"),
    ("cardType", "card_type"),
)


def _attrs(fields: Mapping[str, Any], code: Code, options: Options) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(code.attrs)
    for key, name in _STRING_ATTRS:
        if value := text(fields.get(key)):
            attrs[name] = value
    if "person" not in attrs and "person_name" in attrs:
        attrs["person"] = attrs["person_name"]
    for key, name in _INT_ATTRS:
        if (number_value := integer(fields.get(key))) is not None:
            attrs[name] = number_value
    seconds = number(options.get("held_open_seconds"))
    if code.event == "door_held_open" and seconds is not None and seconds > 0:
        # the controller says "held open too long", not how long: the configured threshold
        attrs["seconds"] = seconds
    return attrs


def event_message(fields: Mapping[str, Any], ts_ms: int | None, options: Options) -> AdaptedMessage:
    """One access-control event (the fields of a push's ``AccessControllerEvent`` or of an
    ``AcsEvent.InfoList`` entry) as a normalized message.

    The code pair is ``majorEventType``/``subEventType`` in a push, ``major``/``minor`` in
    the event log; a missing or non-integer code is ``Rejected("bad_event_code")``.
    """
    major = integer(fields.get("majorEventType", fields.get("major")))
    minor = integer(fields.get("subEventType", fields.get("minor")))
    if major is None or minor is None:
        raise Rejected("bad_event_code", "major and minor event codes are required integers")
    code = CODES.get((major, minor), OTHER)
    attrs = _attrs(fields, code, options)
    if code is OTHER:
        attrs.update(major=major, minor=minor)
    serial = integer(fields.get("serialNo"))
    return AdaptedMessage(
        "event",
        event=code.event,
        attrs=attrs,
        ts_ms=ts_ms,
        seq=serial if serial is not None and serial >= 0 else None,
    )


def decode(content_type: str, body: bytes, options: Options) -> Adapted:
    """One pushed ``EventNotificationAlert`` (JSON, or the JSON part of a multipart body)."""
    split = split_body(content_type, body, options)
    if split.kind != "json":
        raise Rejected("not_json", "access controllers push JSON")
    document = load_json(split.document)
    identity = mac(document.get("macAddress"))
    fields = document.get("AccessControllerEvent")
    if not isinstance(fields, dict):
        # heartbeats and camera-style events on the same listener: no access event in them
        ignored = IGNORED.get(text(document.get("eventType")), "not_access_event")
        return Adapted(NAME, identity, "access", ignored=ignored, identity=identity)
    message = event_message(fields, iso_ms(document.get("dateTime")), options)
    return Adapted(NAME, identity, "access", (message,), identity=identity, pictures=split.pictures)


ADAPTER = Adapter(NAME, "http", decode)


# --- the controller's event log: filling a gap in the serial numbers ---------------------

SEARCH_PATH = "/ISAPI/AccessControl/AcsEvent?format=json"
MAX_RESULTS = 30
"""Page size public clients use; controllers answer at most about this many per page."""


MAX_GAP = 3000
"""Most serial numbers one gap asks the controller for (100 pages of 30): a larger jump is a
controller that was away for long or was replaced; its latest events are the ones wanted."""


def serial_gap(
    last_seen: int | None, serial: int, max_gap: int = MAX_GAP
) -> tuple[int, int] | None:
    """The serial numbers (first, last) missing between the last one stored and a pushed one,
    or ``None`` when there is no gap: nothing stored yet, the next serial, a repeat, or a
    smaller serial (a reset controller counts afresh: the caller starts from it). A gap
    wider than ``max_gap`` is cut to its latest ``max_gap`` serials."""
    if last_seen is None or serial <= last_seen + 1:
        return None
    return max(last_seen + 1, serial - max_gap), serial - 1


def _isapi_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("an ISAPI search time needs an offset (the controller's zone)")
    return moment.isoformat(timespec="seconds")


def search_request(
    search_id: str,
    *,
    position: int = 0,
    max_results: int = MAX_RESULTS,
    start: datetime | None = None,
    end: datetime | None = None,
    first_serial: int | None = None,
    last_serial: int | None = None,
    major: int = 0,
    minor: int = 0,
) -> tuple[str, str, bytes]:
    """``(path, content type, body)`` of one page of an event-log search
    (``POST /ISAPI/AccessControl/AcsEvent?format=json``, digest auth).

    A gap between two pushed serial numbers is searched as ``first_serial``..``last_serial``
    (``beginSerialNo``/``endSerialNo``); a time range (``start``/``end``, with the
    controller's offset) bounds it too, or alone. ``search_id`` stays the same for every
    page of one search and ``position`` moves by the number of results received. ``major``
    and ``minor`` 0 ask for every event; some models insist on a non-zero ``major``: search
    each of 1, 3 and 5 then.
    """
    if start is None and end is None and first_serial is None and last_serial is None:
        raise ValueError("a search needs a time range or a serial number range")
    cond: dict[str, Any] = {
        "searchID": search_id,
        "searchResultPosition": position,
        "maxResults": max_results,
        "major": major,
        "minor": minor,
    }
    if start is not None:
        cond["startTime"] = _isapi_time(start)
    if end is not None:
        cond["endTime"] = _isapi_time(end)
    if first_serial is not None:
        cond["beginSerialNo"] = first_serial
    if last_serial is not None:
        cond["endSerialNo"] = last_serial
    return SEARCH_PATH, "application/json", orjson.dumps({"AcsEventCond": cond})


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of the controller's event log: its events as messages (``seq`` = serial
    number), how many matched in all, and whether more pages follow."""

    messages: tuple[AdaptedMessage, ...]
    total: int | None
    more: bool


def parse_search(body: bytes, options: Options) -> SearchPage:
    """An ``AcsEvent`` search answer as the messages a push would have given.

    Each entry of ``AcsEvent.InfoList`` keys on ``major``/``minor`` like a push; its time is
    ``time``. ``responseStatusStrg`` ``MORE`` means another page follows. Entries without a
    code pair are skipped (they cannot be events); anything else unreadable is
    ``Rejected("bad_search_response")``.
    """
    document = load_json(body)
    search = document.get("AcsEvent")
    if not isinstance(search, dict):
        raise Rejected("bad_search_response", "no AcsEvent object")
    entries = search.get("InfoList", [])
    if not isinstance(entries, list):
        raise Rejected("bad_search_response", "InfoList is not a list")
    messages = []
    for entry in entries:
        if isinstance(entry, dict) and "major" in entry and "minor" in entry:
            try:
                messages.append(event_message(entry, iso_ms(entry.get("time")), options))
            except Rejected:
                continue  # a code pair that is not a number pair: no event to recover
    total = integer(search.get("totalMatches"))
    return SearchPage(tuple(messages), total, text(search.get("responseStatusStrg")) == "MORE")


# --- remote door open ---------------------------------------------------------------------

DOOR_COMMANDS = ("open", "close")


def remote_door_request(door: int, cmd: str = "open") -> tuple[str, str, str, bytes]:
    """``(method, path, content type, body)`` that opens (or closes) door ``door`` (1-based):
    ``PUT /ISAPI/AccessControl/RemoteControl/door/{door}`` with a ``RemoteControlDoor``
    document; the caller adds digest authentication."""
    if isinstance(door, bool) or not isinstance(door, int) or not 1 <= door <= 256:
        raise ValueError(f"door must be a door number 1..256, not {door!r}")
    if cmd not in DOOR_COMMANDS:
        raise ValueError(f"cmd must be one of {DOOR_COMMANDS}, not {cmd!r}")
    body = f"<RemoteControlDoor><cmd>{cmd}</cmd></RemoteControlDoor>".encode()
    return "PUT", f"/ISAPI/AccessControl/RemoteControl/door/{door}", "application/xml", body


@dataclass(frozen=True, slots=True)
class ResponseStatus:
    """An ISAPI ``ResponseStatus``: ``ok`` when ``statusCode`` is 1 (OK)."""

    ok: bool
    status_code: int | None
    status_string: str
    sub_status_code: str


def parse_response_status(content_type: str, body: bytes) -> ResponseStatus:
    """The answer to a remote control (or any ISAPI ``PUT``): XML ``<ResponseStatus>`` or
    its JSON form (``{"statusCode": 1, "statusString": "OK", "subStatusCode": "ok"}``).
    ``Rejected`` (``not_xml``, ``not_json``, ``xml_forbidden``, ...) when unreadable."""
    split = split_body(content_type, body, {})
    values: Mapping[str, Any]
    if split.kind == "json":
        document = load_json(split.document)
        inner = document.get("ResponseStatus")
        values = inner if isinstance(inner, dict) else document
    else:
        root = load_xml(split.document)
        values = {child.tag: child.text or "" for child in root}
    code = integer(values.get("statusCode"))
    return ResponseStatus(
        ok=code == 1,
        status_code=code,
        status_string=text(values.get("statusString")),
        sub_status_code=text(values.get("subStatusCode")),
    )
