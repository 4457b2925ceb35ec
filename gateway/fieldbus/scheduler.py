"""One scheduler per serial port: RS-485 has one master, so every frame on a bus goes through
one task, one transaction at a time, with the protocol's inter-frame gap after each.

Order of work: a queued locker command (the priority lane) goes out before the next poll
transaction, so it waits at most for the transaction already on the wire (bounded by
``timeout_ms``), never for a poll cycle. Polls: every device once per ``poll_every_s``, all its
merged blocks; a CRC/checksum error or garbage is retried ``retries`` times at once; silence is
not (it costs a whole timeout). ``offline_after`` failed cycles in a row -> the device is
reported offline, then polled with backoff (every 2, 4, 8 cycles). The port gone -> the bus is
offline, reopened with backoff (1 s doubling to 30 s), logged once when lost and once when back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from devices.serial.errors import CHECKSUM_ERRORS, CodecError, ExceptionResponse, WrongAddress
from gateway.fieldbus.devices import BusDevice, LockerDevice, Transaction, build_device
from gateway.fieldbus.link import PortUnavailable, ReplyTimeout, SerialLink
from gateway.fieldbus.locker import LockCommand, Lockers
from gateway.fieldbus.outbox import Outbox
from gateway.fieldbus.settings import SerialBus

log = logging.getLogger(__name__)

MAX_BACKOFF_CYCLES = 8
PORT_BACKOFF_S = (1.0, 30.0)
Sleep = Callable[[float], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


class BusScheduler:
    def __init__(
        self,
        bus: SerialBus,
        link: SerialLink,
        outbox: Outbox,
        *,
        now_ms: Callable[[], int] = _now_ms,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bus = bus
        self.link = link
        self.outbox = outbox
        self.now_ms = now_ms
        self.monotonic = monotonic
        self.sleep = sleep
        self.devices = [build_device(bus, d) for d in bus.devices]
        self.lockers = Lockers(self, [d for d in self.devices if isinstance(d, LockerDevice)])
        self.commands: asyncio.Queue[LockCommand] = asyncio.Queue(32)
        self.gap_s = max(3.5 * bus.bits_per_char / bus.baudrate, 0.00175)
        self.timeout_s = bus.timeout_ms / 1000
        self.online: bool | None = None
        self.cycles = 0
        self.port_failures = 0
        self.last_cycle_s = 0.0
        self.transactions = 0
        self._wake = asyncio.Event()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = PORT_BACKOFF_S[0]
        logged = False
        while True:
            if not self.link.is_open:
                try:
                    self.link.open()
                except PortUnavailable as exc:
                    self.port_failures += 1
                    if not logged:
                        log.warning("bus %s: port unavailable, retrying: %s", self.bus.id, exc)
                        logged = True
                    await self.set_bus_state(False)
                    await self._idle(backoff)
                    backoff = min(backoff * 2, PORT_BACKOFF_S[1])
                    continue
                if logged:
                    log.info("bus %s: port %s is back", self.bus.id, self.bus.port)
                    logged = False
                backoff = PORT_BACKOFF_S[0]
                await self.set_bus_state(True)
            try:
                await self._cycle()
            except PortUnavailable as exc:
                self.port_failures += 1
                self.link.close()
                log.warning("bus %s: port lost, reopening: %s", self.bus.id, exc)
                logged = True
                await self.set_bus_state(False)

    async def _idle(self, seconds: float) -> None:
        """Wait, but leave at once to refuse expired commands (they cannot be sent anyway)."""
        deadline = self.monotonic() + seconds
        while (left := deadline - self.monotonic()) > 0:
            try:
                cmd = await asyncio.wait_for(self.commands.get(), left)
            except TimeoutError:
                return
            await self.lockers.refuse(cmd, "unavailable")

    async def _cycle(self) -> None:
        start = self.monotonic()
        results = []
        for dev in self.devices:
            await self.serve_commands()
            results.append(await self._poll(dev))
        self.cycles += 1
        self.last_cycle_s = self.monotonic() - start
        if True in results:
            await self.set_bus_state(True)
        elif False in results and self.link.is_open:
            await self.set_bus_state(False)  # nothing answers: the cable, not fifty meters
        while (left := start + self.bus.poll_every_s - self.monotonic()) > 0:
            try:
                cmd = await asyncio.wait_for(self.commands.get(), left)
            except TimeoutError:
                break
            await self.lockers.execute(cmd)

    async def serve_commands(self) -> None:
        while not self.commands.empty():
            await self.lockers.execute(self.commands.get_nowait())

    # -- one device ------------------------------------------------------------------------

    async def _poll(self, dev: BusDevice) -> bool | None:
        """True: answered; False: failed; None: skipped (backoff)."""
        if dev.skip > 0:
            dev.skip -= 1
            return None
        results: list[Any] = []
        for tx in dev.transactions:
            await self.serve_commands()
            result = await self.transact(dev, tx)
            if result is None:
                break
            results.append(result)
        ok = len(results) == len(dev.transactions)
        if not ok:
            dev.counters.polls_failed += 1
            dev.failed_cycles += 1
            if dev.failed_cycles >= self.bus.offline_after:
                if dev.online is not False:
                    log.info("bus %s: %s silent, offline", self.bus.id, dev.id)
                    await self._device_state(dev, False)
                dev.backoff = min(max(dev.backoff * 2, 1), MAX_BACKOFF_CYCLES)
                dev.skip = dev.backoff
            return False
        dev.counters.polls_ok += 1
        dev.failed_cycles = dev.backoff = 0
        if dev.online is not True:
            if dev.online is False:
                log.info("bus %s: %s answers again", self.bus.id, dev.id)
            await self._device_state(dev, True)
        if isinstance(dev, LockerDevice):
            await self.lockers.on_status(dev, results[0])
        else:
            fields: dict[str, Any] = {}
            for r in results:
                fields.update(r)
            self.publish_telemetry(dev, fields)
        return True

    async def transact(self, dev: BusDevice, tx: Transaction) -> Any | None:
        """One request/reply, with retries after line errors; None when it failed."""
        c = dev.counters
        for _ in range(1 + self.bus.retries):
            c.requests += 1
            self.transactions += 1
            try:
                raw = await self.link.transact(tx.request, tx.length, self.timeout_s)
            except ReplyTimeout as t:
                if not t.partial:
                    c.timeouts += 1
                    await self.sleep(self.gap_s)
                    return None
                raw = t.partial
            try:
                value = tx.decode(raw)
            except CHECKSUM_ERRORS:
                c.checksum_errors += 1
            except ExceptionResponse:
                c.exceptions += 1
                await self.sleep(self.gap_s)
                return None
            except WrongAddress:
                c.wrong_address += 1
            except CodecError:
                c.malformed += 1
            else:
                c.replies += 1
                await self.sleep(self.gap_s)
                return value
            await self.sleep(self.gap_s)
            self.link.discard()
        return None

    # -- publishing ------------------------------------------------------------------------

    def topic(self, dev: BusDevice, message: str) -> str:
        return self.outbox.topic(dev.community, dev.device_class, dev.id, message)

    def publish_telemetry(self, dev: BusDevice, fields: dict[str, Any]) -> None:
        dev.seq += 1
        body = {"ts": self.now_ms(), "seq": dev.seq, **fields}
        self.outbox.telemetry(self.topic(dev, "telemetry"), body)

    async def publish_event(self, dev: BusDevice, event: str, **attrs: Any) -> None:
        dev.seq += 1
        body = {"ts": self.now_ms(), "seq": dev.seq, "event": event, **attrs}
        await self.outbox.send(self.topic(dev, "event"), body)

    async def _device_state(self, dev: BusDevice, online: bool) -> None:
        dev.online = online
        state = "online" if online else "offline"
        await self.outbox.send(self.topic(dev, "status"), {"state": state}, retain=True)

    async def set_bus_state(self, online: bool, reason: str = "") -> None:
        """Publish the bus's state (retained) when it changed; ``reason`` says why it is
        offline when that is not a fault (``GATEWAY_STOPPED``)."""
        if self.online is online and not reason:
            return
        self.online = online
        b = self.bus
        topic = self.outbox.topic(b.community, b.device_class, b.id, "status")
        body: dict[str, Any] = {"state": "online" if online else "offline"}
        if reason:
            body["reason"] = reason
        await self.outbox.send(topic, body, retain=True)
