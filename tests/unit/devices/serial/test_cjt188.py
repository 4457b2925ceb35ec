"""CJ/T 188-2004 against the worked frames of the protocol note, a round trip, random bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.serial import cjt188
from devices.serial.errors import (
    BadChecksum,
    CodecError,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)

REPLY = (
    "68 10 44 33 22 11 00 33 78 81 16 1F 90 00 00 77 66 55 2C 00 77 66 55 2C"
    " 31 01 22 11 05 15 20 21 84 13 16"
)
ADDRESS = "78330011223344"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_requests() -> None:
    assert cjt188.read_request(0x10, ADDRESS)[2:] == h(
        "68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16"
    )
    assert cjt188.read_request(0x10, "a" * 14, ser=1)[2:] == h(
        "68 10 AA AA AA AA AA AA AA 01 03 1F 90 01 D2 16"
    )


def test_standard_reply() -> None:
    r = cjt188.decode_reply(h(REPLY), 0x10, ADDRESS)
    assert r.volume_m3 == 556677.0 and r.settlement_m3 == 556677.0
    assert r.time == "2015-05-11T22:01:31" and r.status == h("21 84")
    assert cjt188.frame_length(h(REPLY)) == len(h(REPLY))


def test_vendor_reply_with_swapped_di_and_preamble() -> None:
    frame = h(
        "FE FE FE 68 10 01 00 00 05 08 00 00 81 16 90 1F 00 00 23 01 00 2C 00 00 00 00 2C"
        " 00 00 00 00 00 00 00 00 00 48 16"
    )
    assert cjt188.decode_reply(frame, 0x10, "00000805000001").volume_m3 == 123.0


def test_errors() -> None:
    good = h(REPLY)
    with pytest.raises(BadChecksum):
        cjt188.decode_reply(good[:-2] + b"\x08\x16", 0x10, ADDRESS)
    with pytest.raises(WrongAddress):
        cjt188.decode_reply(good, 0x10, "00000000000001")
    with pytest.raises(WrongAddress):
        cjt188.decode_reply(good, 0x30, ADDRESS)
    with pytest.raises(ShortFrame):
        cjt188.decode_reply(good[:20], 0x10, ADDRESS)
    abnormal = cjt188.build(0x10, ADDRESS, cjt188.ABNORMAL, h("1F 90 00 04"))
    with pytest.raises(ExceptionResponse):
        cjt188.decode_reply(abnormal, 0x10, ADDRESS)
    litres = bytearray(good)
    litres[18] = 0x14  # the unit code of W, not a volume
    litres[-2] = sum(litres[:-2]) & 0xFF
    with pytest.raises(MalformedFrame):
        cjt188.decode_reply(bytes(litres), 0x10, ADDRESS)


@given(st.binary(max_size=50))
def test_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(CodecError):
        cjt188.decode_reply(raw, 0x10, ADDRESS)
    cjt188.frame_length(raw)


@given(st.binary(min_size=0, max_size=30))
def test_random_data_in_valid_frames(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        cjt188.decode_reply(cjt188.build(0x10, ADDRESS, cjt188.REPLY, data), 0x10, ADDRESS)
