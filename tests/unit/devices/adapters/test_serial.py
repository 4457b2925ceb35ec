"""Serial frames through the codecs of devices.serial, as ``courtyard decode`` reads them."""

from __future__ import annotations

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import SERIAL
from tests.unit.devices.adapters.helpers import decoded, only


def test_dlt645_request_and_replies() -> None:
    out = decoded(SERIAL["dlt645_request"])
    assert (out["source"], out["class"]) == ("123456789012", "meter")
    assert out["messages"] == [
        {
            "kind": "request",
            "attrs": {"address": "123456789012", "di": "00010000", "field": "energy_kwh"},
        }
    ]
    assert only(SERIAL["dlt645_reply"])["readings"] == {"energy_kwh": 1234.56}
    assert only(SERIAL["dlt645_power"])["readings"] == {"power_w": -1234.5}  # -1.2345 kW


def test_cjt188_request_and_reply() -> None:
    assert only(SERIAL["cjt188_request"])["attrs"] == {
        "address": "00000012345678",
        "meter_type": "0x10",
        "di": "1f90",
    }
    assert only(SERIAL["cjt188_reply"])["readings"] == {
        "volume_m3": 1234.56,
        "volume_settlement_m3": 1234.0,
    }


def test_lockboard_requests_and_status() -> None:
    assert only(SERIAL["lockboard_request"])["attrs"] == {"board": 0, "ask": "status"}
    assert only(SERIAL["lockboard_unlock"])["attrs"] == {"board": 1, "lock": 3, "ask": "unlock"}
    out = decoded(SERIAL["lockboard_status"])
    assert out["class"] == "locker"
    readings = out["messages"][0]["readings"]
    assert len(readings) == 32
    assert readings["locked"] is True
    assert readings["locked_l3"] is False  # lock 3's hook is open
    assert readings["locked_l16"] is True
    assert not any(v for k, v in readings.items() if k.startswith("occupied"))


def test_modbus_request_names_the_fields_and_the_reply_decodes_with_the_map() -> None:
    assert only(SERIAL["modbus_request"])["attrs"] == {
        "slave": 1,
        "function": 4,
        "address": 0,
        "count": 6,
        "fields": ["voltage_v", "voltage_l2_v", "voltage_l3_v"],
    }
    assert only(SERIAL["modbus_reply"])["readings"] == {
        "voltage_v": 230.5,
        "voltage_l2_v": 231.0,
        "voltage_l3_v": 229.5,
    }


@pytest.mark.parametrize(
    ("adapter", "frame", "options", "reason"),
    [
        (
            "dlt645",
            "fe fe 68 12 90 78 56 34 12 68 91 08 33 33 34 33 89 67 45 33 55 16",
            {},
            "bad_checksum",
        ),
        ("dlt645", "fe fe fe fe 68 12 90 78 56 34 12 68 d1 01 35 8d 16", {}, "exception_response"),
        ("dlt645", "68 12 90", {}, "short_frame"),
        ("cjt188", "fe fe 68 10 78 56 34 12 00 00 00 01 03 1f 90 00 3f 17", {}, "malformed"),
        ("lockboard", "02 00 35 fb ff 00 00 03 35", {}, "bad_checksum"),
        ("lockboard", "02 00 30", {}, "short_frame"),
        ("modbus", "01 04 0c 43 66 80 00 43 67 00 00 43 65 80 00 41 55", {}, "needs_request"),
        ("modbus", "01 04 00 00 00 06 70 09", {}, "bad_crc"),
        ("modbus", "01 04 00 00 00 06 70 08", {"model": "xyz"}, "unknown_model"),
        (
            "modbus",
            "01 04 0c 43 66 80 00 43 67 00 00 43 65 80 00 41 55",
            {"request": "01 04 00 00 00 06 70 08"},
            "unknown_model",
        ),
        (
            "modbus",
            "01 84 02 c2 c1",
            {"model": "sdm630", "request": "01 04 00 00 00 06 70 08"},
            "exception_response",
        ),
        ("modbus", "01 04 00", {"model": "sdm630", "request": "zz"}, "bad_hex"),
    ],
)
def test_codec_errors_are_rejections_with_the_codec_code(
    adapter: str, frame: str, options: dict[str, str], reason: str
) -> None:
    with pytest.raises(Rejected) as err:
        ADAPTERS[adapter].decode("", bytes.fromhex(frame), options)
    assert err.value.reason == reason
