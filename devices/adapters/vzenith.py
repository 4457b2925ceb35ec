"""Vzenith (臻识) and compatible plate cameras: the ``AlarmInfoPlate`` JSON push, and the
camera's own reply, which can open the barrier through the camera's relay.

``{"AlarmInfoPlate": {"serialno": ..., "result": {"PlateResult": {...}}}}``: the plate is
``license`` (Unicode, a Chinese province prefix first), its colour a code of
:data:`COLORS`, ``confidence`` 1-100, the frame's time ``timeStamp.Timeval.sec/usec``,
``plateid`` the camera's id of the read (the message's ``seq``), the snapshot base64 in
``imageFile`` (a picture). The camera's ``serialno`` is the identity the body claims. A body
with a ``serialno`` and no ``AlarmInfoPlate`` is the camera's heartbeat.

A plate camera watches one lane in one direction: option ``role`` (``entry``, the default,
or ``exit``) picks ``vehicle_entered`` or ``vehicle_exited``; option ``lane`` names the lane.
The camera's ``direction`` code (meaning not verified) is kept as ``direction_code``.

Sources: the field model of ayayacc/parkLine ``src/main/java/com/kl/parkLine/boyue/``
(``PlateResult.java``, ``AlarmInfoPlate.java``, ``BoyueResp.java``, ``BoyueHearBeat.java``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from devices.adapters.base import Adapted, AdaptedMessage, Adapter, Options
from devices.adapters.httpbody import (
    base64_pictures,
    integer,
    lane_option,
    load_json,
    number,
    split_body,
    text,
)
from devices.model import Rejected

NAME = "vzenith"

REASONS = ("not_plate_event",)
"""Reasons of this module, beside those of :mod:`devices.adapters.httpbody`."""

COLORS: Mapping[int, str] = {1: "blue", 2: "yellow", 3: "white", 4: "black", 5: "green"}
"""``colorType`` codes; 0 is "unknown" (no ``plate_color``)."""
TRIGGERS: Mapping[int, str] = {1: "video", 2: "io", 4: "software", 8: "virtual_loop"}
"""``triggerType`` codes: what made the camera read (its video, an IO input, a software
trigger, a virtual loop)."""
EVENTS: Mapping[str, str] = {"entry": "vehicle_entered", "exit": "vehicle_exited"}
PICTURES: tuple[tuple[str, str], ...] = (
    ("imageFile", "imageFile.jpg"),
    ("imageFragmentFile", "imageFragmentFile.jpg"),
)
"""Base64 image fields of ``PlateResult`` (the snapshot; the plate crop where the camera is
set to send it) and the name each picture is given."""
NO_PLATE = frozenset(("", "unknown"))


def _role(options: Options) -> str:
    role = options.get("role", "entry")
    if role not in EVENTS:
        raise Rejected("bad_option", f"role: {role!r} is not entry or exit")
    return role


def _ts_ms(result: Mapping[str, Any]) -> int | None:
    stamp = result.get("timeStamp")
    timeval = stamp.get("Timeval") if isinstance(stamp, dict) else None
    if not isinstance(timeval, dict):
        return None
    sec = integer(timeval.get("sec"))
    usec = integer(timeval.get("usec")) or 0
    if sec is None or sec <= 0 or not 0 <= usec < 1_000_000:
        return None
    return sec * 1000 + usec // 1000


def _attrs(result: Mapping[str, Any], options: Options) -> dict[str, Any]:
    plate = text(result.get("license"))
    attrs: dict[str, Any] = {"plate": None if plate.lower() in NO_PLATE else plate}
    color = integer(result.get("colorType"))
    if color is not None and color in COLORS:
        attrs["plate_color"] = COLORS[color]
    if (confidence := number(result.get("confidence"))) is not None:
        attrs["confidence"] = confidence
    if (lane := lane_option(options)) is not None:
        attrs["lane"] = lane
    trigger = integer(result.get("triggerType"))
    if trigger is not None and trigger in TRIGGERS:
        attrs["trigger"] = TRIGGERS[trigger]
    if (direction := integer(result.get("direction"))) is not None:
        attrs["direction_code"] = direction
    if (offline := integer(result.get("isoffline"))) is not None:
        attrs["recorded_offline"] = offline == 1
    return attrs


def decode(content_type: str, body: bytes, options: Options) -> Adapted:
    """One ``AlarmInfoPlate`` push (or heartbeat)."""
    role = _role(options)
    split = split_body(content_type, body, options)
    if split.kind != "json":
        raise Rejected("not_json", "Vzenith cameras push JSON")
    document = load_json(split.document)
    alarm = document.get("AlarmInfoPlate")
    if not isinstance(alarm, dict):
        if "serialno" in document:
            identity = text(document.get("serialno"))
            return Adapted(NAME, identity, "parking", ignored="heartbeat", identity=identity)
        raise Rejected("not_plate_event", "no AlarmInfoPlate object")
    identity = text(alarm.get("serialno"))
    outer = alarm.get("result")
    result = outer.get("PlateResult") if isinstance(outer, dict) else None
    if not isinstance(result, dict):
        raise Rejected("not_plate_event", "no result.PlateResult object")
    plate_id = integer(result.get("plateid"))
    attrs = _attrs(result, options)
    pictures, broken = base64_pictures(result, PICTURES)
    if broken:
        attrs["bad_pictures"] = list(broken)
    message = AdaptedMessage(
        "event",
        event=EVENTS[role],
        attrs=attrs,
        ts_ms=_ts_ms(result),
        seq=plate_id if plate_id is not None and plate_id >= 0 else None,
    )
    return Adapted(
        NAME, identity, "parking", (message,), identity=identity, pictures=split.pictures + pictures
    )


def reply(
    adapted: Adapted, *, open_barrier: bool = False, content: str | None = None
) -> tuple[str, bytes]:
    """The camera's own answer to a push: ``{"Response_AlarmInfoPlate": {...}}``.

    ``info`` ``"ok"`` makes the camera open the barrier through its relay; anything else
    leaves it closed, so the default (the gateway's answer once the read is committed) is
    ``"no"``. A barrier decision (a plate on the allow list, an operator's open) answers the
    same push with ``open_barrier=True``; ``content`` is text for the camera's display.
    ``plateid`` echoes the read's id when it had one.
    """
    answer: dict[str, Any] = {"info": "ok" if open_barrier else "no"}
    seq = adapted.messages[0].seq if adapted.messages else None
    if seq is not None:
        answer["plateid"] = seq
    if content is not None:
        answer["content"] = content
    return "application/json", orjson.dumps({"Response_AlarmInfoPlate": answer})


ADAPTER = Adapter(NAME, "http", decode, reply=reply)
