"""2N LPR: the plate reads that an LPR camera (Axis, Vaxtor) posts to a 2N device's
``/api/lpr/licenseplate``, posted to Courtyard instead, answered as the 2N device answers.

``{"lprUuid": ..., "lprID": 143289, "accessPoint": 0, "plateText": "ABC123456",
"plateImage": "<base64 JPEG>", "lprDir": 2}``: ``accessPoint`` 0 is an entry, 1 an exit
(mandatory: the camera's own entry/exit setting, so no option overrides it); ``lprDir`` is
the motion the camera saw (0 unknown, 1 undefined, 2 in, 3 out), kept as ``direction``.
``lprUuid`` is unique per read (``event_id``); ``lprID`` is the same for every read of one
arrival (``read_id``). There is no confidence, no time (the hub's receive time is used) and
no identity of the camera in the body: the token alone says which camera it is.

Source: the 2N HTTP API manual, section 5.16.1 ``api/lpr/licenseplate``
(https://wiki.2n.com/hip/hapi/latest/en/5-prehled-funkci-http-api/5-16-api-lpr/5-16-1-api-lpr-licenseplate).
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
    split_body,
    text,
)
from devices.model import Rejected

NAME = "2n-lpr"

REASONS = ("bad_access_point",)
"""Reasons of this module, beside those of :mod:`devices.adapters.httpbody`."""

EVENTS: Mapping[int, str] = {0: "vehicle_entered", 1: "vehicle_exited"}
"""``accessPoint`` to the event."""
DIRECTIONS: Mapping[int, str] = {0: "unknown", 1: "undefined", 2: "in", 3: "out"}
"""``lprDir`` codes."""
PICTURES: tuple[tuple[str, str], ...] = (("plateImage", "plateImage.jpg"),)
NO_PLATE = frozenset(("", "unknown"))


def decode(content_type: str, body: bytes, options: Options) -> Adapted:
    """One ``licenseplate`` request body."""
    split = split_body(content_type, body, options)
    if split.kind != "json":
        raise Rejected("not_json", "2N LPR requests are JSON")
    document = load_json(split.document)
    access_point = integer(document.get("accessPoint"))
    if access_point is None or access_point not in EVENTS:
        raise Rejected("bad_access_point", "accessPoint must be 0 (entry) or 1 (exit)")
    plate = text(document.get("plateText"))
    attrs: dict[str, Any] = {"plate": None if plate.lower() in NO_PLATE else plate}
    if (lane := lane_option(options)) is not None:
        attrs["lane"] = lane
    direction = integer(document.get("lprDir"))
    if direction is not None and direction in DIRECTIONS:
        attrs["direction"] = DIRECTIONS[direction]
    if event_id := text(document.get("lprUuid")):
        attrs["event_id"] = event_id
    if (read_id := integer(document.get("lprID"))) is not None:
        attrs["read_id"] = read_id
    pictures, broken = base64_pictures(document, PICTURES)
    if broken:
        attrs["bad_pictures"] = list(broken)
    message = AdaptedMessage("event", event=EVENTS[access_point], attrs=attrs)
    return Adapted(NAME, "", "parking", (message,), pictures=split.pictures + pictures)


def reply(_adapted: Adapted) -> tuple[str, bytes]:
    """What a 2N device answers a valid request: ``{"success": true}``."""
    return "application/json", orjson.dumps({"success": True})


ADAPTER = Adapter(NAME, "http", decode, reply=reply)
