"""Modbus meter register maps as data, merged read blocks, and register -> field decoding.

A :class:`MeterMap` lists what to read (address, function, type, word order, scale) and which
contract field each value becomes, in the field's unit (DDSU666 power in kW -> ``power_w`` with
scale 1000; DTSU666 raw values with their scale factors). L1 is ``voltage_v``/``current_a``; the
other phases are extra fields (``voltage_l2_v``, ``current_l3_a``...).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from devices.serial.modbus import READ_HOLDING, READ_INPUT

RegType = Literal["float32", "uint16", "int16", "uint32", "int32"]
WordOrder = Literal["ABCD", "CDAB"]
_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")
WIDTH: dict[str, int] = {"float32": 2, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2}


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value: ``field`` = decoded(address..) x ``scale``, in ``unit``."""

    field: str
    address: int
    unit: str
    type: RegType = "float32"
    scale: float = 1.0
    function: int = READ_INPUT
    word_order: WordOrder = "ABCD"

    @property
    def width(self) -> int:
        return WIDTH[self.type]


@dataclass(frozen=True, slots=True)
class Block:
    """One read request covering one or more specs."""

    function: int
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]


@dataclass(frozen=True, slots=True)
class MeterMap:
    model: str
    specs: tuple[RegisterSpec, ...]
    max_gap: int = 8
    """Unused registers a block may span rather than start a new request (~16 bytes of wire
    time against a whole new transaction with its turnaround)."""
    max_count: int = 60
    """Registers per request (Eastron: 30 parameters)."""

    def blocks(self) -> tuple[Block, ...]:
        return merge_blocks(self.specs, self.max_gap, self.max_count)


def merge_blocks(
    specs: Sequence[RegisterSpec], max_gap: int = 8, max_count: int = 60
) -> tuple[Block, ...]:
    """Group specs of one function into as few reads as gaps and size limits allow."""
    out: list[Block] = []
    for function in sorted({s.function for s in specs}):
        todo = sorted((s for s in specs if s.function == function), key=lambda s: s.address)
        group: list[RegisterSpec] = []
        start = end = 0
        for spec in todo:
            s_end = spec.address + spec.width
            if group and spec.address - end <= max_gap and s_end - start <= max_count:
                group.append(spec)
                end = max(end, s_end)
                continue
            if group:
                out.append(Block(function, start, end - start, tuple(group)))
            group, start, end = [spec], spec.address, s_end
        if group:
            out.append(Block(function, start, end - start, tuple(group)))
    return tuple(out)


def value_of(spec: RegisterSpec, words: Sequence[int]) -> float:
    """The scaled value of ``spec`` from its registers (``len(words) == spec.width``)."""
    if spec.width == 1:
        raw = struct.pack(">H", words[0])
        number: float = struct.unpack(">h" if spec.type == "int16" else ">H", raw)[0]
    else:
        hi, lo = (words[0], words[1]) if spec.word_order == "ABCD" else (words[1], words[0])
        raw = struct.pack(">HH", hi, lo)
        fmt = {"float32": ">f", "uint32": ">I", "int32": ">i"}[spec.type]
        number = struct.unpack(fmt, raw)[0]
    return number * spec.scale if spec.scale != 1.0 else float(number)


def decode_block(block: Block, registers: Sequence[int]) -> dict[str, float]:
    """Field values of one block's reply registers (non-finite floats are left out)."""
    out: dict[str, float] = {}
    for spec in block.specs:
        at = spec.address - block.address
        value = value_of(spec, registers[at : at + spec.width])
        if value == value and abs(value) != float("inf"):
            out[spec.field] = value
    return out


def _f(
    field: str, address: int, unit: str, scale: float = 1.0, fn: int = READ_INPUT
) -> RegisterSpec:
    return RegisterSpec(field, address, unit, scale=scale, function=fn)


SDM630 = MeterMap(
    "sdm630",
    (
        _f("voltage_v", 0x0000, "V"),
        _f("voltage_l2_v", 0x0002, "V"),
        _f("voltage_l3_v", 0x0004, "V"),
        _f("current_a", 0x0006, "A"),
        _f("current_l2_a", 0x0008, "A"),
        _f("current_l3_a", 0x000A, "A"),
        _f("power_l1_w", 0x000C, "W"),
        _f("power_l2_w", 0x000E, "W"),
        _f("power_l3_w", 0x0010, "W"),
        _f("power_w", 0x0034, "W"),
        _f("power_factor", 0x003E, ""),
        _f("frequency_hz", 0x0046, "Hz"),
        _f("energy_kwh", 0x0048, "kWh"),
        _f("energy_export_kwh", 0x004A, "kWh"),
    ),
)
SDM120 = MeterMap(
    "sdm120",
    (
        _f("voltage_v", 0x0000, "V"),
        _f("current_a", 0x0006, "A"),
        _f("power_w", 0x000C, "W"),
        _f("frequency_hz", 0x0046, "Hz"),
        _f("energy_kwh", 0x0048, "kWh"),
        _f("energy_export_kwh", 0x004A, "kWh"),
    ),
)
DDSU666 = MeterMap(
    "ddsu666",
    (
        _f("voltage_v", 0x2000, "V"),
        _f("current_a", 0x2002, "A"),
        _f("power_w", 0x2004, "W", 1000.0),  # the meter reports kW
        _f("power_factor", 0x200A, ""),
        _f("frequency_hz", 0x200E, "Hz"),
        _f("energy_kwh", 0x4000, "kWh"),
        _f("energy_export_kwh", 0x400A, "kWh"),
    ),
)
_H = READ_HOLDING
DTSU666 = MeterMap(
    "dtsu666",
    (
        _f("voltage_v", 0x2006, "V", 0.1, _H),
        _f("voltage_l2_v", 0x2008, "V", 0.1, _H),
        _f("voltage_l3_v", 0x200A, "V", 0.1, _H),
        _f("current_a", 0x200C, "A", 0.001, _H),
        _f("current_l2_a", 0x200E, "A", 0.001, _H),
        _f("current_l3_a", 0x2010, "A", 0.001, _H),
        _f("power_w", 0x2012, "W", 0.1, _H),
        _f("power_l1_w", 0x2014, "W", 0.1, _H),
        _f("power_l2_w", 0x2016, "W", 0.1, _H),
        _f("power_l3_w", 0x2018, "W", 0.1, _H),
        _f("energy_kwh", 0x401E, "kWh", 1.0, _H),
        _f("energy_export_kwh", 0x4028, "kWh", 1.0, _H),
    ),
)

METER_MAPS = MappingProxyType({m.model: m for m in (SDM630, SDM120, DDSU666, DTSU666)})
"""Built-in Modbus meter models by name."""


def map_from_table(model: str, data: Mapping[str, Any]) -> MeterMap:
    """A register map from a parsed register-map file (TOML)::

        function = 4            # default for every register: 3 holding, 4 input
        word_order = "ABCD"     # default: ABCD or CDAB
        max_gap = 8
        max_count = 60
        [[registers]]
        field = "energy_kwh"
        address = 0x0048        # 0-based PDU address
        unit = "kWh"
        type = "float32"        # float32 | uint16 | int16 | uint32 | int32
        scale = 1.0             # optional, also function and word_order per register

    Raises ValueError naming the entry at fault.
    """
    known = {"function", "word_order", "max_gap", "max_count", "registers"}
    if extra := sorted(set(data) - known):
        raise ValueError(f"unknown key {extra[0]!r}")
    function = data.get("function", READ_INPUT)
    word_order = data.get("word_order", "ABCD")
    specs: list[RegisterSpec] = []
    seen: set[str] = set()
    registers = data.get("registers")
    if not isinstance(registers, list) or not registers:
        raise ValueError("registers: expected a non-empty [[registers]] list")
    for i, r in enumerate(registers):
        where = f"registers[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where}: expected a table")
        keys = {"field", "address", "unit", "type", "scale", "function", "word_order"}
        if extra := sorted(set(r) - keys):
            raise ValueError(f"{where}: unknown key {extra[0]!r}")
        field, address = r.get("field"), r.get("address")
        if not isinstance(field, str) or not _FIELD.fullmatch(field) or field in seen:
            raise ValueError(f"{where}.field: a new snake_case name, e.g. energy_kwh")
        seen.add(field)
        if type(address) is not int or not 0 <= address <= 0xFFFE:
            raise ValueError(f"{where}.address: a 0-based register address")
        kind = r.get("type", "float32")
        fn = r.get("function", function)
        order = r.get("word_order", word_order)
        scale = r.get("scale", 1.0)
        if kind not in WIDTH:
            raise ValueError(f"{where}.type: one of {', '.join(WIDTH)}")
        if fn not in (READ_HOLDING, READ_INPUT):
            raise ValueError(f"{where}.function: 3 (holding) or 4 (input)")
        if order not in ("ABCD", "CDAB"):
            raise ValueError(f"{where}.word_order: ABCD or CDAB")
        if type(scale) not in (int, float) or not scale:
            raise ValueError(f"{where}.scale: a non-zero number")
        unit = r.get("unit", "")
        if not isinstance(unit, str):
            raise ValueError(f"{where}.unit: a string")
        specs.append(RegisterSpec(field, address, unit, kind, float(scale), fn, order))
    max_gap, max_count = data.get("max_gap", 8), data.get("max_count", 60)
    if type(max_gap) is not int or type(max_count) is not int or not 1 <= max_count <= 125:
        raise ValueError("max_gap, max_count: integers, max_count 1..125")
    if any(s.width > max_count for s in specs):
        raise ValueError("max_count is smaller than a register")
    return MeterMap(model, tuple(specs), max_gap=max(0, max_gap), max_count=max_count)
