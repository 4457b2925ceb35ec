"""Lockers on a lock-board bus: signed ``open_compartment`` commands, door states, events.

The bridge acts as the locker bank's firmware: it verifies each command as the device would
(:mod:`gateway.fieldbus.verify`), sends the unlock frame on the priority lane, confirms with the
board's status (the reply to the unlock, or a status poll when the board sends none) and only
then acks ``ok: true``; a lock still latched acks ``jammed`` and raises ``compartment_jammed``.
Polled door states raise ``compartment_left_open`` once per opening when a door stays open for
``left_open_after_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from devices.serial import lockboard
from devices.serial.errors import CodecError
from devices.serial.lockboard import BoardStatus
from gateway.fieldbus.devices import BusDevice, LockerDevice, Transaction, status_tx
from gateway.fieldbus.link import ReplyTimeout, SerialLink
from gateway.fieldbus.outbox import Outbox
from gateway.fieldbus.settings import SerialBus
from gateway.fieldbus.verify import TAMPER, CommandGuard, late_allowance_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LockCommand:
    device: LockerDevice
    cmd: dict[str, Any]
    compartment: int
    received: float
    """Monotonic time the command reached the bridge."""


class LockerPort(Protocol):
    """What the locker commands need of their bus's scheduler (which satisfies it): its
    clocks, its line and timing, its priority lane for commands and its publishing."""

    bus: SerialBus
    link: SerialLink
    outbox: Outbox
    commands: asyncio.Queue[LockCommand]
    now_ms: Callable[[], int]
    monotonic: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    timeout_s: float
    gap_s: float

    async def transact(self, dev: BusDevice, tx: Transaction) -> Any | None: ...

    def topic(self, dev: BusDevice, message: str) -> str: ...

    def publish_telemetry(self, dev: BusDevice, fields: dict[str, Any]) -> None: ...

    async def publish_event(self, dev: BusDevice, event: str, **attrs: Any) -> None: ...


def _compartment(args: Any) -> int | None:
    value = args.get("compartment") if isinstance(args, dict) else None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is int and 1 <= value <= lockboard.LOCKS:
        return value
    return None


class Lockers:
    def __init__(self, scheduler: LockerPort, devices: list[LockerDevice]) -> None:
        self.s = scheduler
        self.devices = {d.id: d for d in devices}
        boot = scheduler.now_ms()
        self.guards = {d.id: CommandGuard(d.id, d.cfg.secret, boot) for d in devices}
        self.latencies_s: list[float] = []
        """Command received -> unlock frame written, per executed command (last 1000)."""
        self.commands_total = 0
        self.refused_total = 0

    # -- commands --------------------------------------------------------------------------

    async def submit(self, device: str, payload: bytes, received: float) -> None:
        """A message on the device's ``cmd`` topic: verify now, queue on the priority lane."""
        dev = self.devices[device]
        try:
            cmd: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            cmd = None
        error = self.guards[device].check(cmd, self.s.now_ms())
        cmd_id = cmd.get("id") if isinstance(cmd, dict) else None
        if error is None:
            if cmd.get("action") != "open_compartment":
                error = "unknown_action"
            elif (n := _compartment(cmd.get("args"))) is None:
                error = "bad_args"
            elif self.s.commands.full():
                error = "busy"
            else:
                self.s.commands.put_nowait(LockCommand(dev, cmd, n, received))
                return
        await self._ack(dev, cmd_id, error)
        if error in TAMPER:
            await self.s.publish_event(dev, "tamper", reason=error, command_id=str(cmd_id or ""))

    async def refuse(self, command: LockCommand, error: str) -> None:
        await self._ack(command.device, command.cmd.get("id"), error)

    async def execute(self, command: LockCommand) -> None:
        dev, n, s = command.device, command.compartment, self.s
        if s.now_ms() > int(command.cmd["expires_at"]) + late_allowance_ms(command.cmd):
            await self.refuse(command, "expired")  # never sent late
            return
        self.commands_total += 1
        s.link.discard()
        s.link.write(lockboard.unlock_request(dev.board, n))
        self.latencies_s = [*self.latencies_s[-999:], s.monotonic() - command.received]
        dev.counters.requests += 1
        status: BoardStatus | None = None
        try:
            raw = await s.link.read_reply(lockboard.reply_length, s.timeout_s)
            status = lockboard.decode_status(raw, dev.board)
            dev.counters.replies += 1
        except ReplyTimeout:
            pass  # some boards do not answer an unlock: confirm with a status poll
        except CodecError as exc:
            dev.counters.malformed += 1
            log.debug("locker %s: unlock reply not usable: %s", dev.id, exc)
        await s.sleep(s.gap_s)
        if status is None:
            status = await s.transact(dev, status_tx(dev.board))
        if status is None:
            await self.refuse(command, "no_answer")
            return
        if status.locked[n - 1]:
            await self.refuse(command, "jammed")
            await s.publish_event(dev, "compartment_jammed", compartment=n)
        else:
            await self._ack(dev, command.cmd.get("id"), None)
        await self.on_status(dev, status)

    async def _ack(self, dev: LockerDevice, cmd_id: Any, error: str | None) -> None:
        ident = cmd_id if isinstance(cmd_id, str) else ""
        body: dict[str, Any] = {"id": ident, "ok": error is None}
        if error is not None:
            self.refused_total += 1
            body["error"] = error
        body["ts"] = self.s.now_ms()
        await self.s.outbox.send(self.s.topic(dev, "ack"), body)

    # -- door states -----------------------------------------------------------------------

    async def on_status(self, dev: LockerDevice, status: BoardStatus) -> None:
        now = self.s.monotonic()
        dev.last_status = status
        for i, closed in enumerate(status.locked, start=1):
            if closed:
                dev.open_since.pop(i, None)
                dev.reported_open.discard(i)
                continue
            since = dev.open_since.setdefault(i, now)
            if i not in dev.reported_open and now - since >= self.s.bus.left_open_after_s:
                dev.reported_open.add(i)
                await self.s.publish_event(dev, "compartment_left_open", compartment=i)
        open_now = len(status.open_locks)
        self.s.publish_telemetry(
            dev, {"total_compartments": lockboard.LOCKS, "open_compartments": open_now}
        )
