"""Simulated RS-485 devices: each answers one request frame with its reply frame (or nothing).

A meter holds physical values (V, A, W, kWh); the energy counter counts up with the power while
the meter is not ``frozen``. Each model encodes the values the way the real meter does (SDM in
direct units; DDSU666 power in kW; DTSU666 raw values divided by its scale factors; DL/T 645 in
BCD). ``fault`` injects a failure on demand: ``bad_crc``, ``silent``, ``garbage``, ``slow``.
"""

from __future__ import annotations

import random
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

from firmware_stubs.serial import wire

FAULTS = ("", "bad_crc", "silent", "garbage", "slow")

# model -> (function, {address: (quantity, divisor)}); the value sent is quantity / divisor
_SDM630 = {
    0x0000: ("voltage_v", 1.0), 0x0002: ("voltage_l2_v", 1.0), 0x0004: ("voltage_l3_v", 1.0),
    0x0006: ("current_a", 1.0), 0x0008: ("current_l2_a", 1.0), 0x000A: ("current_l3_a", 1.0),
    0x000C: ("power_l1_w", 1.0), 0x000E: ("power_l2_w", 1.0), 0x0010: ("power_l3_w", 1.0),
    0x0034: ("power_w", 1.0), 0x003E: ("power_factor", 1.0), 0x0046: ("frequency_hz", 1.0),
    0x0048: ("energy_kwh", 1.0), 0x004A: ("energy_export_kwh", 1.0),
}  # fmt: skip
_SDM120 = {
    0x0000: ("voltage_v", 1.0), 0x0006: ("current_a", 1.0), 0x000C: ("power_w", 1.0),
    0x0046: ("frequency_hz", 1.0), 0x0048: ("energy_kwh", 1.0),
    0x004A: ("energy_export_kwh", 1.0),
}  # fmt: skip
_DDSU666 = {
    0x2000: ("voltage_v", 1.0), 0x2002: ("current_a", 1.0), 0x2004: ("power_w", 1000.0),
    0x200A: ("power_factor", 1.0), 0x200E: ("frequency_hz", 1.0), 0x4000: ("energy_kwh", 1.0),
    0x400A: ("energy_export_kwh", 1.0),
}  # fmt: skip
_DTSU666 = {
    0x2006: ("voltage_v", 0.1), 0x2008: ("voltage_l2_v", 0.1), 0x200A: ("voltage_l3_v", 0.1),
    0x200C: ("current_a", 0.001), 0x200E: ("current_l2_a", 0.001),
    0x2010: ("current_l3_a", 0.001), 0x2012: ("power_w", 0.1), 0x2014: ("power_l1_w", 0.1),
    0x2016: ("power_l2_w", 0.1), 0x2018: ("power_l3_w", 0.1), 0x401E: ("energy_kwh", 1.0),
    0x4028: ("energy_export_kwh", 1.0),
}  # fmt: skip
MODBUS_MODELS: dict[str, tuple[int, dict[int, tuple[str, float]]]] = {
    "sdm630": (4, _SDM630),
    "sdm120": (4, _SDM120),
    "ddsu666": (4, _DDSU666),
    "dtsu666": (3, _DTSU666),
}
"""For DDSU666 the divisor 1000 sends W as kW; for DTSU666 the 'divisor' is the scale factor:
raw = value / scale, e.g. 226.3 V is sent as 2263.0."""


def _initial(seed: int, three_phase: bool) -> dict[str, float]:
    rnd = random.Random(seed)
    v = {
        "voltage_v": round(rnd.uniform(215, 240), 1),
        "current_a": round(rnd.uniform(0.5, 30), 3),
        "frequency_hz": round(rnd.uniform(49.9, 50.1), 2),
        "power_factor": round(rnd.uniform(0.85, 1.0), 3),
        "energy_kwh": round(rnd.uniform(100, 90000), 2),
        "energy_export_kwh": round(rnd.uniform(0, 50), 2),
    }
    if three_phase:
        for n in (2, 3):
            v[f"voltage_l{n}_v"] = round(rnd.uniform(215, 240), 1)
            v[f"current_l{n}_a"] = round(rnd.uniform(0.5, 30), 3)
        for n in (1, 2, 3):
            ph = "" if n == 1 else f"_l{n}"
            v[f"power_l{n}_w"] = round(v[f"voltage{ph}_v"] * v[f"current{ph}_a"] * 0.95, 1)
        v["power_w"] = round(sum(v[f"power_l{n}_w"] for n in (1, 2, 3)), 1)
    else:
        v["power_w"] = round(v["voltage_v"] * v["current_a"] * 0.95, 1)
    return v


@dataclass
class SimDevice:
    """What every simulated bus device has: an address, a fault switch and counters."""

    protocol: ClassVar[str] = ""
    fault: str = ""
    slow_s: float = 1.0
    requests: int = 0
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, frame: bytes) -> bytes | None:
        """The reply to one request frame of this device's protocol, or None (not for us)."""
        return None

    def corrupt(self, reply: bytes) -> bytes | None:
        """Apply the current fault to a reply (``slow`` is applied by the bus)."""
        if self.fault == "silent":
            return None
        if self.fault == "bad_crc":
            return reply[:-1] + bytes(((reply[-1] + 1) & 0xFF,))
        if self.fault == "garbage":
            return bytes(random.getrandbits(8) for _ in range(len(reply)))
        return reply


@dataclass
class ModbusMeter(SimDevice):
    protocol: ClassVar[str] = "modbus-rtu"
    model: str = "sdm630"
    slave: int = 1
    values: dict[str, float] = field(default_factory=dict)
    frozen: bool = False
    _last: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.values:
            self.values = _initial(self.slave * 7919 + len(self.model), self.three_phase)

    @property
    def three_phase(self) -> bool:
        return self.model in ("sdm630", "dtsu666")

    def tick(self) -> None:
        now = time.monotonic()
        if not self.frozen:
            self.values["energy_kwh"] += self.values["power_w"] / 1000 * (now - self._last) / 3600
        self._last = now

    def expected(self) -> dict[str, float]:
        """What a correct reader must report: the wire's float32, scaled back."""
        _, table = MODBUS_MODELS[self.model]
        with self.lock:
            return {q: wire.f32(self.values[q] / d) * d for q, d in table.values()}

    def answer(self, request: bytes) -> bytes | None:
        slave, function, address, count = struct.unpack(">BBHH", request[:6])
        if slave != self.slave:
            return None
        self.requests += 1
        fn, table = MODBUS_MODELS[self.model]
        if function != fn:
            return wire.modbus_frame(bytes((slave, function | 0x80, 0x01)))
        with self.lock:
            self.tick()
            if not any(address <= a < address + count for a in table):
                return wire.modbus_frame(bytes((slave, fn | 0x80, 0x02)))  # illegal address
            data = bytearray()
            a = address
            while a < address + count:
                entry = table.get(a)
                if entry is not None and a + 1 < address + count:
                    data += wire.float_words(self.values[entry[0]] / entry[1])
                    a += 2
                else:
                    data += b"\x00\x00"
                    a += 1
        self.answered += 1
        return wire.modbus_frame(bytes((slave, fn, len(data))) + bytes(data))


DLT_IDS: dict[int, tuple[str, int, int, bool, float]] = {
    0x00010000: ("energy_kwh", 4, 2, False, 1.0),
    0x00020000: ("energy_export_kwh", 4, 2, False, 1.0),
    0x02010100: ("voltage_v", 2, 1, False, 1.0),
    0x02020100: ("current_a", 3, 3, True, 1.0),
    0x02030000: ("power_w", 3, 4, True, 1000.0),  # sent in kW
}


@dataclass
class DltMeter(SimDevice):
    """A DL/T 645-2007 meter; values are held at the resolution the protocol carries."""

    protocol: ClassVar[str] = "dlt645-2007"
    address: str = "000000000001"
    values: dict[str, float] = field(default_factory=dict)
    frozen: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            v = _initial(int(self.address), False)
            self.values = {k: v[k] for k in ("voltage_v", "current_a", "power_w", "energy_kwh")}
            self.values["energy_export_kwh"] = 0.0

    def expected(self) -> dict[str, float]:
        with self.lock:
            return {q: round(self.values[q] / d, dec) * d for q, _, dec, _, d in DLT_IDS.values()}

    def answer(self, frame: bytes) -> bytes | None:
        frame = frame.lstrip(b"\xfe")
        addr = frame[1:7][::-1].hex()
        if addr not in (self.address, "aaaaaaaaaaaa") or frame[8] != 0x11:
            return None
        self.requests += 1
        data = bytes((b - 0x33) & 0xFF for b in frame[10 : 10 + frame[9]])
        di = int.from_bytes(data[:4], "little")
        spec = DLT_IDS.get(di)
        if spec is None:
            return wire.dlt_frame(self.address, 0xD1, b"\x02")
        q, size, dec, signed, d = spec
        with self.lock:
            if not self.frozen and q == "energy_kwh":
                self.values[q] = round(self.values[q] + 0.01, 2)
            value = wire.bcd(self.values[q] / d, size, dec, signed)
        self.answered += 1
        return wire.dlt_frame(self.address, 0x91, data[:4] + value)


@dataclass
class CjtMeter(SimDevice):
    """A CJ/T 188 water (type 0x10) or gas (0x30) meter answering 901F in m3."""

    protocol: ClassVar[str] = "cjt188-2004"
    address: str = "00000000000001"
    meter_type: int = 0x10
    volume_m3: float = 1234.56
    frozen: bool = False

    def expected(self) -> dict[str, float]:
        with self.lock:
            return {"volume_m3": round(self.volume_m3, 2)}

    def answer(self, frame: bytes) -> bytes | None:
        frame = frame.lstrip(b"\xfe")
        addr = frame[2:9][::-1].hex()
        if addr not in (self.address, "a" * 14) or frame[1] not in (self.meter_type, 0xAA):
            return None
        if frame[9] != 0x01 or frame[11:13] != b"\x1f\x90":
            return None
        self.requests += 1
        with self.lock:
            if not self.frozen:
                self.volume_m3 = round(self.volume_m3 + 0.01, 2)
            flow = wire.bcd(self.volume_m3, 4, 2, False)
        clock = bytes.fromhex("31012211051520")  # 2015-05-11 22:01:31, ss mm hh DD MM YY YY
        data = b"\x1f\x90" + frame[13:14] + flow + b"\x2c" + flow + b"\x2c" + clock + b"\x00\x00"
        self.answered += 1
        return wire.cjt_frame(self.meter_type, self.address, 0x81, data)


@dataclass
class LockBoard(SimDevice):
    """A 16-lock board: an unlock opens the door; ``close(lock)`` pushes it shut again."""

    protocol: ClassVar[str] = "kerong-lock-board"
    board: int = 0
    locked: list[bool] = field(default_factory=lambda: [True] * 16)
    jammed: set[int] = field(default_factory=set)
    unlocks: list[tuple[int, float]] = field(default_factory=list)
    """(lock, monotonic time the unlock frame was complete on the wire)."""

    def close(self, lock: int) -> None:
        with self.lock:
            self.locked[lock - 1] = True

    def status(self) -> bytes:
        h = sum(1 << i for i, b in enumerate(self.locked) if b)
        return wire.lock_frame(self.board << 4, 0x35, bytes((h & 0xFF, h >> 8, 0, 0)))

    def answer(self, frame: bytes) -> bytes | None:
        addr, cmd = frame[1], frame[2]
        if addr >> 4 != self.board:
            return None
        self.requests += 1
        with self.lock:
            if cmd == 0x31:
                lock = (addr & 0x0F) + 1
                self.unlocks.append((lock, time.monotonic()))
                if lock not in self.jammed:
                    self.locked[lock - 1] = False
            elif cmd not in (0x30, 0x32):
                return None
            self.answered += 1
            return self.status()
