"""Vzenith AlarmInfoPlate and 2N LPR pushes, and the replies each camera expects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.adapters import lpr_2n, vzenith
from devices.adapters.base import Adapted
from devices.model import Rejected
from tests.unit.devices.adapters import http_payloads as p


def vz(document: Any, options: dict[str, str] | None = None) -> Adapted:
    return vzenith.decode("application/json", orjson.dumps(document), options or {})


def test_vzenith_plate() -> None:
    got = vz(p.VZ_PLATE)
    assert got.as_json() == {
        "adapter": "vzenith",
        "source": p.VZ_SERIAL,
        "class": "parking",
        "messages": [
            {
                "kind": "event",
                "event": "vehicle_entered",
                "attrs": {
                    "plate": "粤FQK883",
                    "plate_color": "blue",
                    "confidence": 97,
                    "trigger": "virtual_loop",
                    "direction_code": 4,
                    "recorded_offline": False,
                },
                "ts": 1_763_700_000_123,
                "seq": 1843,
            }
        ],
        "pictures": [
            {"content_type": "image/jpeg", "bytes": len(p.JPEG_2), "name": "imageFile.jpg"}
        ],
    }
    assert got.identity == p.VZ_SERIAL
    assert got.pictures[0].data == p.JPEG_2


def test_vzenith_role_and_lane_options() -> None:
    got = vz(p.VZ_PLATE, {"role": "exit", "lane": "2"})
    assert got.messages[0].event == "vehicle_exited"
    assert got.messages[0].attrs["lane"] == 2
    assert vz(p.VZ_PLATE, {"lane": "north-1"}).messages[0].attrs["lane"] == "north-1"
    with pytest.raises(Rejected) as exc:
        vz(p.VZ_PLATE, {"role": "both"})
    assert exc.value.reason == "bad_option"


def test_vzenith_no_plate_no_colour_no_time() -> None:
    message = vz(p.VZ_NO_PLATE).messages[0]
    assert message.attrs == {"plate": None, "trigger": "video"}
    assert (message.ts_ms, message.seq) == (None, 1844)


def test_vzenith_heartbeat_ignored() -> None:
    got = vz(p.VZ_HEARTBEAT)
    assert (got.ignored, got.identity, got.messages) == ("heartbeat", p.VZ_SERIAL, ())


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"something": 1}, "not_plate_event"),
        ({"AlarmInfoPlate": {"serialno": "x", "result": {}}}, "not_plate_event"),
        ({"AlarmInfoPlate": {"serialno": "x", "result": {"PlateResult": []}}}, "not_plate_event"),
    ],
)
def test_vzenith_rejected(document: Any, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        vz(document)
    assert exc.value.reason == reason


def test_broken_picture_does_not_cost_the_read() -> None:
    broken = {"license": "A", "imageFile": "%%%", "imageFragmentFile": "QUJD\nREVG"}
    got = vz({"AlarmInfoPlate": {"serialno": "x", "result": {"PlateResult": broken}}})
    assert got.messages[0].attrs == {"plate": "A", "bad_pictures": ["imageFile"]}
    # line breaks in base64 are fine; bytes that are no known image keep a neutral type
    assert [(x.name, x.content_type, x.data) for x in got.pictures] == [
        ("imageFragmentFile.jpg", "application/octet-stream", b"ABCDEF")
    ]
    document = {**p.LPR_2N_EXIT, "plateImage": "not base64!"}
    got = lpr_2n.decode("application/json", orjson.dumps(document), {})
    assert got.messages[0].attrs["bad_pictures"] == ["plateImage"]
    assert got.pictures == ()


def test_vzenith_sent_as_form_encoding_is_still_read() -> None:
    # some firmware declares a form or plain-text body for the same JSON
    body = orjson.dumps(p.VZ_PLATE)
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        got = vzenith.decode(content_type, body, {})
        assert got.messages[0].attrs["plate"] == "粤FQK883"


def test_vzenith_reply_keeps_the_barrier_closed_unless_told() -> None:
    got = vz(p.VZ_PLATE)
    assert vzenith.ADAPTER.reply is vzenith.reply
    content_type, body = vzenith.reply(got)
    assert content_type == "application/json"
    assert orjson.loads(body) == {"Response_AlarmInfoPlate": {"info": "no", "plateid": 1843}}
    _, opened = vzenith.reply(got, open_barrier=True, content="欢迎 粤FQK883")
    assert orjson.loads(opened) == {
        "Response_AlarmInfoPlate": {"info": "ok", "plateid": 1843, "content": "欢迎 粤FQK883"}
    }
    heartbeat = vz(p.VZ_HEARTBEAT)
    assert orjson.loads(vzenith.reply(heartbeat)[1]) == {"Response_AlarmInfoPlate": {"info": "no"}}


def test_2n_entry_with_picture() -> None:
    got = lpr_2n.decode("application/json", orjson.dumps(p.LPR_2N_ENTRY), {"lane": "1"})
    assert got.as_json() == {
        "adapter": "2n-lpr",
        "source": "",
        "class": "parking",
        "messages": [
            {
                "kind": "event",
                "event": "vehicle_entered",
                "attrs": {
                    "plate": "ABC123456",
                    "lane": 1,
                    "direction": "in",
                    "event_id": "bc4baad9-d2cd-4706-986f-b942963bfa9f",
                    "read_id": 143289,
                },
            }
        ],
        "pictures": [
            {"content_type": "image/jpeg", "bytes": len(p.JPEG), "name": "plateImage.jpg"}
        ],
    }
    assert got.identity == ""
    assert got.pictures[0].data == p.JPEG


def test_2n_exit_without_picture() -> None:
    got = lpr_2n.decode("application/json", orjson.dumps(p.LPR_2N_EXIT), {})
    assert got.messages[0].event == "vehicle_exited"
    assert got.messages[0].attrs["direction"] == "out"
    assert "lane" not in got.messages[0].attrs
    assert got.pictures == ()


@pytest.mark.parametrize("access_point", [None, 2, "entry", -1, True])
def test_2n_access_point_required(access_point: Any) -> None:
    document = {**p.LPR_2N_ENTRY, "accessPoint": access_point}
    with pytest.raises(Rejected) as exc:
        lpr_2n.decode("application/json", orjson.dumps(document), {})
    assert exc.value.reason == "bad_access_point"


def test_2n_empty_plate_is_null_and_reply_is_2n_success() -> None:
    document = {**p.LPR_2N_ENTRY, "plateText": ""}
    got = lpr_2n.decode("application/json", orjson.dumps(document), {})
    assert got.messages[0].attrs["plate"] is None
    assert lpr_2n.ADAPTER.reply is not None
    assert lpr_2n.ADAPTER.reply(got) == ("application/json", b'{"success":true}')
