"""Codecs against the worked frames of the protocol notes, round trips, and their error tree."""

from __future__ import annotations

import struct

import pytest

from devices.serial import dlt645, lockboard, modbus
from devices.serial.errors import (
    BadChecksum,
    BadCrc,
    ExceptionResponse,
    MalformedFrame,
    ShortFrame,
    WrongAddress,
)
from devices.serial.registers import DDSU666, DTSU666, METER_MAPS, SDM630, decode_block


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- Modbus RTU ------------------------------------------------------------------------------


def test_crc_self_check() -> None:
    assert modbus.crc16(b"123456789") == 0x4B37


@pytest.mark.parametrize(
    ("args", "frame"),
    [
        ((1, 4, 0x0048, 2), "01 04 00 48 00 02 F1 DD"),
        ((1, 4, 0x0156, 2), "01 04 01 56 00 02 90 27"),
        ((1, 3, 0x401E, 2), "01 03 40 1E 00 02 B1 CD"),
        ((1, 4, 0x0000, 2), "01 04 00 00 00 02 71 CB"),
    ],
)
def test_read_requests_match_worked_frames(args: tuple[int, int, int, int], frame: str) -> None:
    assert modbus.read_request(*args) == h(frame)


def test_reply_total_import_kwh() -> None:
    regs = modbus.decode_reply(h("01 04 04 46 40 E6 AE 24 C4"), 1, 4, 2)
    block = SDM630.blocks()[1]
    spec = next(s for s in block.specs if s.field == "energy_kwh")
    assert struct.unpack(">f", struct.pack(">HH", *regs))[0] == 12345.669921875
    words = [0] * block.count
    at = spec.address - block.address
    words[at : at + 2] = regs
    assert decode_block(block, words)["energy_kwh"] == 12345.669921875


def test_voltage_replies() -> None:
    sdm = modbus.decode_reply(h("01 04 04 43 66 19 9A 85 E4"), 1, 4, 2)
    assert struct.unpack(">f", struct.pack(">HH", *sdm))[0] == pytest.approx(230.1, abs=1e-4)
    ddsu = modbus.decode_reply(h("01 04 04 43 66 33 34 1B 38"), 1, 4, 2)
    block = DDSU666.blocks()[0]
    words = ddsu + [0] * (block.count - 2)
    assert decode_block(block, words)["voltage_v"] == pytest.approx(230.2, abs=1e-4)


def test_dtsu666_scale_factor() -> None:
    regs = modbus.decode_reply(h("01 03 04 45 0D 70 00 5B 3C"), 1, 3, 2)
    block = DTSU666.blocks()[0]
    assert block.address == 0x2006
    values = decode_block(block, regs + [0] * (block.count - 2))
    assert values["voltage_v"] == pytest.approx(226.3)


def test_ddsu666_power_kw_becomes_w() -> None:
    block = DDSU666.blocks()[0]
    words = [0] * block.count
    words[4:6] = struct.unpack(">HH", struct.pack(">f", 1.25))  # 0x2004: 1.25 kW
    assert decode_block(block, words)["power_w"] == 1250.0


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("01 04 04 46 40 E6 AE 24 C5", BadCrc),
        ("01 84 02 C2 C1", ExceptionResponse),
        ("01 04 04 46 40", ShortFrame),
        ("01 04", ShortFrame),
    ],
)
def test_modbus_errors(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        modbus.decode_reply(h(frame), 1, 4, 2)


def test_modbus_exception_code_and_wrong_slave() -> None:
    with pytest.raises(ExceptionResponse) as exc:
        modbus.decode_reply(h("01 84 02 C2 C1"), 1, 4, 2)
    assert exc.value.exception_code == 2
    other = modbus.with_crc(h("02 04 04 46 40 E6 AE"))
    with pytest.raises(WrongAddress):
        modbus.decode_reply(other, 1, 4, 2)
    with pytest.raises(MalformedFrame):
        modbus.decode_reply(h("01 04 04 46 40 E6 AE 24 C4"), 1, 4, 4)


def test_blocks_cover_every_spec_once_within_limits() -> None:
    for meter in METER_MAPS.values():
        covered = [s for b in meter.blocks() for s in b.specs]
        assert sorted(covered, key=lambda s: s.field) == sorted(meter.specs, key=lambda s: s.field)
        for b in meter.blocks():
            assert b.count <= meter.max_count
            for s in b.specs:
                assert b.address <= s.address and s.address + s.width <= b.address + b.count
    assert len(SDM630.blocks()) == 2  # 14 values in two requests


def test_l1_is_the_contract_field_other_phases_extra() -> None:
    for model in ("sdm630", "dtsu666"):
        fields = {s.field for s in METER_MAPS[model].specs}
        assert {"energy_kwh", "power_w", "voltage_v", "current_a"} <= fields
        assert {"voltage_l2_v", "voltage_l3_v", "current_l2_a", "current_l3_a"} <= fields


# -- DL/T 645-2007 ---------------------------------------------------------------------------


def test_dlt645_requests_match_worked_frames() -> None:
    assert dlt645.read_request("398192000337", 0x00010000, preamble=False) == h(
        "68 37 03 00 92 81 39 68 11 04 33 33 34 33 38 16"
    )
    assert dlt645.read_request("aaaaaaaaaaaa", 0x00010000) == h(
        "FE FE FE FE 68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16"
    )
    assert dlt645.read_request("123456789012", 0x00010000) == h(
        "FE FE FE FE 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16"
    )


@pytest.mark.parametrize(
    ("frame", "address", "di", "field", "value"),
    [
        (
            "68 37 03 00 92 81 39 68 91 08 33 33 34 33 37 33 33 33 8C 16",
            "398192000337",
            0x00010000,
            "energy_kwh",
            0.04,
        ),
        (
            "FE FE FE FE 68 12 90 78 56 34 12 68 91 08 33 33 34 33 9A 78 56 34 88 16",
            "123456789012",
            0x00010000,
            "energy_kwh",
            12345.67,
        ),
        (
            "68 12 90 78 56 34 12 68 91 06 33 34 34 35 34 55 76 16",
            "123456789012",
            0x02010100,
            "voltage_v",
            220.1,
        ),
        (
            "68 12 90 78 56 34 12 68 91 07 33 34 35 35 56 84 33 FC 16",
            "123456789012",
            0x02020100,
            "current_a",
            5.123,
        ),
        (
            "68 12 90 78 56 34 12 68 91 07 33 33 36 35 78 56 B4 71 16",
            "123456789012",
            0x02030000,
            "power_w",
            -1234.5,
        ),
    ],
)
def test_dlt645_worked_replies(frame: str, address: str, di: int, field: str, value: float) -> None:
    spec, got = dlt645.decode_reply(h(frame), address, di)
    assert spec.field == field
    assert got == value


def test_dlt645_errors() -> None:
    with pytest.raises(BadChecksum):
        dlt645.decode_reply(
            h("68 37 03 00 92 81 39 68 91 06 33 34 34 35 C7 56 B6 16"), "398192000337", 0x02010100
        )
    good = "68 12 90 78 56 34 12 68 91 06 33 34 34 35 34 55 76 16"
    with pytest.raises(WrongAddress):
        dlt645.decode_reply(h(good), "000000000001", 0x02010100)
    with pytest.raises(MalformedFrame):
        dlt645.decode_reply(h(good), "123456789012", 0x02020100)  # DI mismatch
    with pytest.raises(ShortFrame):
        dlt645.decode_reply(h(good)[:-3], "123456789012", 0x02010100)
    abnormal = dlt645.build("123456789012", dlt645.ABNORMAL, b"\x02", preamble=False)
    with pytest.raises(ExceptionResponse):
        dlt645.decode_reply(abnormal, "123456789012", 0x02010100)


@pytest.mark.parametrize("di", sorted(dlt645.DATA_IDS))
@pytest.mark.parametrize("sign", [1, -1])
def test_dlt645_round_trip(di: int, sign: int) -> None:
    spec = dlt645.DATA_IDS[di]
    if sign < 0 and not spec.signed:
        return
    plain = sign * (10 ** (2 * spec.size - 1) - 7) / 10**spec.decimals / 3
    raw = round(plain, spec.decimals)
    payload = di.to_bytes(4, "little") + dlt645.encode_bcd(
        raw, spec.size, spec.decimals, spec.signed
    )
    frame = dlt645.build("000012345678", dlt645.REPLY, payload)
    _, value = dlt645.decode_reply(frame, "000012345678", di)
    assert value == pytest.approx(raw * spec.factor)
    assert dlt645.frame_length(frame) == len(frame)


# -- lock board ------------------------------------------------------------------------------


def test_lockboard_worked_frames() -> None:
    assert lockboard.status_request(0) == h("02 00 30 03 35")
    assert lockboard.unlock_request(0, 1) == h("02 00 31 03 36")
    assert lockboard.unlock_request(0, 16) == h("02 0F 31 03 45")
    status = lockboard.decode_status(h("02 00 35 FE FF 00 00 03 37"), 0)
    assert status.open_locks == (1,)
    assert not any(status.occupied)


def test_lockboard_round_trip_and_errors() -> None:
    locked = tuple(i % 3 != 0 for i in range(16))
    ir = tuple(i % 5 == 0 for i in range(16))
    frame = lockboard.encode_status(2, locked, ir)
    status = lockboard.decode_status(frame, 2)
    assert status.locked == locked and status.occupied == ir
    with pytest.raises(WrongAddress):
        lockboard.decode_status(frame, 1)
    with pytest.raises(BadChecksum):
        lockboard.decode_status(frame[:-1] + b"\x00", 2)
    with pytest.raises(ShortFrame):
        lockboard.decode_status(frame[:5], 2)
    with pytest.raises(MalformedFrame):
        lockboard.decode_status(b"\x05" + frame[1:], 2)


def test_register_map_from_a_table_and_its_errors() -> None:
    from devices.serial.registers import map_from_table

    table = {
        "function": 3,
        "word_order": "CDAB",
        "max_gap": 9,
        "registers": [
            {"field": "energy_kwh", "address": 10, "unit": "kWh", "type": "uint32", "scale": 0.01},
            {"field": "voltage_v", "address": 0, "unit": "V", "type": "int16", "scale": 0.1},
        ],
    }
    meter = map_from_table("custom", table)
    (block,) = meter.blocks()
    assert (block.function, block.address, block.count) == (3, 0, 12)
    words = [0] * 12
    words[0] = 2301
    words[10:12] = [0x5678, 0x0012]  # CDAB: low word first -> 0x00125678
    values = decode_block(block, words)
    assert values == {"voltage_v": pytest.approx(230.1), "energy_kwh": 0x00125678 * 0.01}
    for bad, where in (
        ({**table, "colour": 1}, "colour"),
        ({**table, "registers": []}, "registers"),
        ({**table, "registers": [{"field": "x", "address": 70000}]}, "address"),
        ({**table, "registers": [{"field": "Bad", "address": 1}]}, "field"),
        ({**table, "registers": [{"field": "x", "address": 1, "type": "f64"}]}, "type"),
        ({**table, "registers": [{"field": "x", "address": 1, "function": 6}]}, "function"),
    ):
        with pytest.raises(ValueError, match=where):
            map_from_table("custom", bad)
