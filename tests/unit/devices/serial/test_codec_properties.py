"""Random bytes never raise anything but the codec's own error."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.serial import dlt645, lockboard, modbus
from devices.serial.errors import CodecError
from devices.serial.registers import METER_MAPS, decode_block


@settings(max_examples=400)
@given(st.binary(max_size=80), st.integers(1, 247), st.sampled_from([3, 4]), st.integers(1, 30))
def test_modbus_random_bytes(raw: bytes, slave: int, fn: int, count: int) -> None:
    try:
        regs = modbus.decode_reply(raw, slave, fn, count)
    except CodecError:
        return
    assert len(regs) == count
    modbus.reply_length(raw)


@settings(max_examples=300)
@given(st.binary(min_size=3, max_size=60), st.integers(1, 247))
def test_modbus_random_body_with_valid_crc(body: bytes, slave: int) -> None:
    with contextlib.suppress(CodecError):
        modbus.decode_reply(modbus.with_crc(body), slave, 4, 2)


@settings(max_examples=400)
@given(st.binary(max_size=60), st.sampled_from(sorted(dlt645.DATA_IDS)))
def test_dlt645_random_bytes(raw: bytes, di: int) -> None:
    with contextlib.suppress(CodecError):
        dlt645.decode_reply(raw, "123456789012", di)
    dlt645.frame_length(raw)


@settings(max_examples=300)
@given(st.binary(max_size=12), st.sampled_from(sorted(dlt645.DATA_IDS)))
def test_dlt645_random_data_in_valid_frames(data: bytes, di: int) -> None:
    frame = dlt645.build("123456789012", 0x91, di.to_bytes(4, "little") + data)
    with contextlib.suppress(CodecError):
        dlt645.decode_reply(frame, "123456789012", di)


@settings(max_examples=300)
@given(st.binary(max_size=20), st.integers(0, 15))
def test_lockboard_random_bytes(raw: bytes, board: int) -> None:
    with contextlib.suppress(CodecError):
        lockboard.decode_status(raw, board)


@given(st.lists(st.integers(0, 0xFFFF), min_size=60, max_size=60))
def test_register_decoding_never_raises(words: list[int]) -> None:
    for meter in METER_MAPS.values():
        for block in meter.blocks():
            values = decode_block(block, words[: block.count])
            assert all(v == v for v in values.values())
