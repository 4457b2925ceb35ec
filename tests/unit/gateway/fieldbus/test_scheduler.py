"""The bus scheduler against simulated devices through an in-memory link (no pty, no clock
waits): priority lane, retries and counters, offline after N cycles and backoff, port loss."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from firmware_stubs.serial.bus import _match
from firmware_stubs.serial.devices import LockBoard, ModbusMeter, SimDevice
from firmware_stubs.signing import signed
from gateway.fieldbus.bridge import Fieldbus
from gateway.fieldbus.link import LengthFn, PortUnavailable, ReplyTimeout
from gateway.fieldbus.settings import SerialBus

SECRET = "1f" * 16


class FakeLink:
    """Answers with simulated devices; records every frame written (the wire)."""

    def __init__(self, devices: list[SimDevice]) -> None:
        self.devices = devices
        self.wire: list[bytes] = []
        self.pending = b""
        self.stray_bytes = 0
        self.unplugged = False
        self.opened = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self.unplugged:
            raise PortUnavailable("gone")
        self.opened += 1
        self._open = True

    def close(self) -> None:
        self._open = False

    def discard(self) -> int:
        self.pending = b""
        return 0

    def write(self, data: bytes) -> None:
        if self.unplugged:
            self._open = False
            raise PortUnavailable("gone")
        self.wire.append(data)
        for dev in self.devices:
            if _match(dev.protocol, data) == len(data) and (reply := dev.answer(data)):
                self.pending = dev.corrupt(reply) or b""
                return
        self.pending = b""

    async def transact(self, request: bytes, length: LengthFn, wait_s: float) -> bytes:
        self.write(request)
        return await self.read_reply(length, wait_s)

    async def read_reply(self, length: LengthFn, wait_s: float) -> bytes:
        await asyncio.sleep(0)
        data, self.pending = self.pending, b""
        if not data:
            raise ReplyTimeout(b"")
        return data


def make(
    devices: list[dict[str, Any]], sims: list[SimDevice], **bus: Any
) -> tuple[Fieldbus, FakeLink, list[tuple[str, Any]]]:
    cfg = SerialBus.model_validate(
        {
            "id": "bus-1",
            "community": "c1",
            "port": "/dev/null",
            "protocol": "modbus-rtu",
            "poll_every_s": 0.05,
            "offline_after": 2,
            **bus,
            "devices": devices,
        }
    )
    link = FakeLink(sims)
    out: list[tuple[str, Any]] = []

    async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        out.append((topic, orjson.loads(payload)))

    fb = Fieldbus([cfg], publish, "community", link_factory=lambda _b: link)  # type: ignore[arg-type, return-value]
    return fb, link, out


def meters(n: int) -> tuple[list[dict[str, Any]], list[SimDevice]]:
    cfgs = [{"id": f"m-{i}", "address": str(i), "model": "sdm630"} for i in range(1, n + 1)]
    sims: list[SimDevice] = [
        ModbusMeter(model="sdm630", slave=i, frozen=True) for i in range(1, n + 1)
    ]
    return cfgs, sims


async def until(pred: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_readings_equal_what_the_meter_holds() -> None:
    cfgs, sims = meters(3)
    fb, _, out = make(cfgs, sims)
    await fb.start()
    await until(lambda: sum(t.endswith("/telemetry") for t, _ in out) >= 3)
    await fb.stop()
    tele = {t.split("/")[3]: b for t, b in out if t.endswith("/telemetry")}
    for i, sim in enumerate(sims, start=1):
        body = tele[f"m-{i}"]
        assert body["seq"] >= 1 and body["ts"] > 0
        for field, value in sim.expected().items():  # type: ignore[attr-defined]
            assert body[field] == pytest.approx(value, rel=1e-9)
    statuses = [(t, b["state"]) for t, b in out if t.endswith("/status")]
    assert ("community/c1/meter/bus-1/status", "online") in statuses


async def test_crc_errors_counted_and_retried_then_offline_and_back() -> None:
    cfgs, sims = meters(2)
    fb, _, out = make(cfgs, sims)
    sims[0].fault = "bad_crc"
    await fb.start()
    s = fb.schedulers[0]
    dev = s.devices[0]
    await until(lambda: dev.online is False)
    assert dev.counters.checksum_errors >= 2 * 2  # each failed cycle: a try and a retry
    assert s.devices[1].online is True and s.online is True  # one bad meter is not the bus
    sims[0].fault = "silent"
    before = dev.counters.timeouts
    await until(lambda: dev.counters.timeouts > before)
    sims[0].fault = ""
    await until(lambda: dev.online is True, within_s=10)
    await fb.stop()
    states = [b["state"] for t, b in out if t == "community/c1/meter/m-1/status"]
    assert states == ["offline", "online"]


async def test_all_silent_means_the_bus_is_down_once() -> None:
    cfgs, sims = meters(3)
    fb, _, out = make(cfgs, sims)
    await fb.start()
    s = fb.schedulers[0]
    await until(lambda: s.online is True and s.cycles >= 1)
    for sim in sims:
        sim.fault = "silent"
    await until(lambda: s.online is False)
    await asyncio.sleep(0.2)
    for sim in sims:
        sim.fault = ""
    await until(lambda: s.online is True)
    await fb.stop()
    bus = [b["state"] for t, b in out if t == "community/c1/meter/bus-1/status"]
    assert bus == ["online", "offline", "online", "offline"]  # the last: stopped


async def test_garbage_never_crashes_it() -> None:
    cfgs, sims = meters(2)
    fb, _, _ = make(cfgs, sims)
    sims[1].fault = "garbage"
    await fb.start()
    s = fb.schedulers[0]
    await until(lambda: s.cycles >= 5)
    sims[1].fault = ""
    await until(lambda: s.devices[1].online is True, within_s=10)
    await fb.stop()
    c = s.devices[1].counters
    assert c.checksum_errors + c.malformed + c.wrong_address + c.timeouts > 0


async def test_port_gone_retried_and_recovered(caplog: pytest.LogCaptureFixture) -> None:
    cfgs, sims = meters(1)
    fb, link, _ = make(cfgs, sims)
    await fb.start()
    s = fb.schedulers[0]
    await until(lambda: s.online is True)
    link.unplugged = True
    await until(lambda: s.online is False)
    await asyncio.sleep(0.3)
    link.unplugged = False
    await until(lambda: s.online is True and link.opened >= 2, within_s=10)
    await fb.stop()
    lost = [r for r in caplog.records if "port lost" in r.getMessage()]
    assert len(lost) == 1


async def test_locker_command_goes_ahead_of_polling() -> None:
    cfgs, sims = meters(20)
    board = LockBoard(board=0)
    cfgs.append(
        {
            "id": "lk-1",
            "address": "0",
            "model": "kerong-cu16",
            "secret": SECRET,
            "protocol": "kerong-lock-board",
        }
    )
    fb, link, out = make(cfgs, [*sims, board], poll_every_s=30)
    await fb.start()
    s = fb.schedulers[0]
    await until(lambda: len(link.wire) >= 5)  # mid-cycle
    now = int(time.time() * 1000)
    c = signed(
        {
            "id": "k1",
            "device": "lk-1",
            "action": "open_compartment",
            "args": {"compartment": 5},
            "issued_at": now,
            "expires_at": now + 5000,
        },
        SECRET,
    )

    class Msg:
        topic = "community/c1/locker/lk-1/cmd"
        payload = orjson.dumps(c)

    written = len(link.wire)
    fb.on_messages([Msg()])
    await until(lambda: any(t.endswith("lk-1/ack") for t, _ in out))
    unlock_at = next(i for i, f in enumerate(link.wire) if f == bytes.fromhex("02 04 31 03 3a"))
    assert unlock_at - written <= 2  # at most the transaction already on the wire
    assert s.cycles == 0  # the poll cycle was not finished, nor waited for
    ack = next(b for t, b in out if t.endswith("lk-1/ack"))
    assert ack["ok"] is True and ack["id"] == "k1"
    assert board.locked[4] is False
    fb.on_messages([Msg()])  # the same command again: replayed
    await until(lambda: sum(t.endswith("lk-1/ack") for t, _ in out) == 2)
    await fb.stop()
    acks = [b for t, b in out if t.endswith("lk-1/ack")]
    assert acks[1]["ok"] is False and acks[1]["error"] == "replayed"
    assert any(b.get("event") == "tamper" for t, b in out if t.endswith("lk-1/event"))


async def test_jammed_lock_is_not_acked_ok_and_left_open_is_reported() -> None:
    board = LockBoard(board=0, jammed={2})
    cfg = [{"id": "lk-1", "address": "0", "model": "kerong-cu16", "secret": SECRET}]
    fb, _, out = make(cfg, [board], protocol="kerong-lock-board", left_open_after_s=0.2)
    await fb.start()
    now = int(time.time() * 1000)

    def msg(ident: str, n: int) -> Any:
        c = signed(
            {
                "id": ident,
                "device": "lk-1",
                "action": "open_compartment",
                "args": {"compartment": n},
                "issued_at": now,
                "expires_at": now + 5000,
            },
            SECRET,
        )
        return type("M", (), {"topic": "community/c1/locker/lk-1/cmd", "payload": orjson.dumps(c)})

    fb.on_messages([msg("a", 2), msg("b", 7)])
    await until(lambda: any(b.get("event") == "compartment_left_open" for _, b in out))
    await fb.stop()
    acks = {b["id"]: b for t, b in out if t.endswith("/ack")}
    assert acks["a"] == {"id": "a", "ok": False, "error": "jammed", "ts": acks["a"]["ts"]}
    assert acks["b"]["ok"] is True
    events = [b for t, b in out if t.endswith("/event")]
    assert {"compartment_jammed", "compartment_left_open"} <= {e["event"] for e in events}
    assert next(e for e in events if e["event"] == "compartment_left_open")["compartment"] == 7


async def test_a_lock_command_that_waited_past_expires_at_is_refused_not_sent() -> None:
    """Command rule 2 on the bridge: verified on arrival, then the bus is busy until just
    after expires_at (the gateway has answered 504 by then): the lock stays shut."""
    board = LockBoard(board=0)
    cfg = [{"id": "lk-1", "address": "0", "model": "kerong-cu16", "secret": SECRET}]
    fb, link, out = make(cfg, [board], protocol="kerong-lock-board")
    s = fb.schedulers[0]
    now = int(time.time() * 1000)
    clock = [now]
    s.now_ms = lambda: clock[0]
    c = signed(
        {
            "id": "k-late",
            "device": "lk-1",
            "action": "open_compartment",
            "args": {"compartment": 3},
            "issued_at": now,
            "expires_at": now + 5000,
            "rule": 2,
        },
        SECRET,
    )
    await s.lockers.submit("lk-1", orjson.dumps(c), time.monotonic())  # verified, queued
    clock[0] = now + 5001
    await fb.start()
    await until(lambda: any(t.endswith("lk-1/ack") for t, _ in out))
    await fb.stop()
    (ack,) = [b for t, b in out if t.endswith("lk-1/ack")]
    assert (ack["id"], ack["ok"], ack["error"]) == ("k-late", False, "expired")
    assert board.locked[2] is True
    assert bytes.fromhex("02 04 31 03 3a") not in link.wire  # no unlock frame at all
