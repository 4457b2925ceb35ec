"""What the scheduler polls: per device, its transactions (request, reply length, decoder) and
its counters. Protocol knowledge comes from the pure codecs in ``devices.serial``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.serial import cjt188, dlt645, lockboard, modbus
from devices.serial.registers import METER_MAPS, Block, decode_block
from gateway.fieldbus.link import LengthFn
from gateway.fieldbus.settings import SerialBus, SerialDevice, load_map_file


@dataclass(frozen=True, slots=True)
class Transaction:
    request: bytes
    length: LengthFn
    decode: Callable[[bytes], Any]
    """Raises a ``devices.serial.CodecError``."""


@dataclass
class Counters:
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    checksum_errors: int = 0
    exceptions: int = 0
    malformed: int = 0
    wrong_address: int = 0
    polls_ok: int = 0
    polls_failed: int = 0


@dataclass
class BusDevice:
    cfg: SerialDevice
    community: str
    transactions: tuple[Transaction, ...]
    counters: Counters = field(default_factory=Counters)
    online: bool | None = None
    failed_cycles: int = 0
    backoff: int = 0
    skip: int = 0
    seq: int = 0

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def device_class(self) -> str:
        return self.cfg.device_class


@dataclass
class LockerDevice(BusDevice):
    board: int = 0
    open_since: dict[int, float] = field(default_factory=dict)
    reported_open: set[int] = field(default_factory=set)
    last_status: lockboard.BoardStatus | None = None


def _modbus_tx(slave: int, block: Block) -> Transaction:
    def decode(raw: bytes) -> dict[str, float]:
        regs = modbus.decode_reply(raw, slave, block.function, block.count)
        return decode_block(block, regs)

    return Transaction(
        modbus.read_request(slave, block.function, block.address, block.count),
        modbus.reply_length,
        decode,
    )


def _dlt_tx(address: str, di: int) -> Transaction:
    def decode(raw: bytes) -> dict[str, float]:
        spec, value = dlt645.decode_reply(raw, address, di)
        return {spec.field: value}

    return Transaction(dlt645.read_request(address, di), dlt645.frame_length, decode)


def status_tx(board: int) -> Transaction:
    return Transaction(
        lockboard.status_request(board),
        lockboard.reply_length,
        lambda raw: lockboard.decode_status(raw, board),
    )


def build_device(bus: SerialBus, cfg: SerialDevice) -> BusDevice:
    protocol = bus.protocol_of(cfg)
    if protocol == "modbus-rtu":
        slave = int(cfg.address)
        meter = METER_MAPS.get(cfg.model) or load_map_file(cfg.model)
        txs = tuple(_modbus_tx(slave, b) for b in meter.blocks())
        return BusDevice(cfg, bus.community, txs)
    if protocol == "dlt645-2007":
        return BusDevice(
            cfg, bus.community, tuple(_dlt_tx(cfg.address, di) for di in dlt645.METER_DIS)
        )
    if protocol == "cjt188-2004":
        kind = cjt188.GAS if cfg.model == "cjt188-gas" else cjt188.WATER

        def decode(raw: bytes) -> dict[str, float]:
            return {"volume_m3": cjt188.decode_reply(raw, kind, cfg.address).volume_m3}

        tx = Transaction(cjt188.read_request(kind, cfg.address), cjt188.frame_length, decode)
        return BusDevice(cfg, bus.community, (tx,))
    board = int(cfg.address)
    return LockerDevice(cfg, bus.community, (status_tx(board),), board=board)
