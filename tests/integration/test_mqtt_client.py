"""MqttClient against a real Mosquitto (its own port, config and data directory per test).

Network failures are made by a small TCP relay the test can cut or stall, broker failures by
killing the broker process; nothing reaches into the client's private state.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.mqtt.broker import free_port
from gateway.mqtt.client import Batch, Message, MqttClient
from gateway.mqtt.errors import ConnectionRefused, MqttTimeout, NotConnected
from tests.support.servers import Mosquitto
from tests.support.wait import until

pytestmark = pytest.mark.integration

LOGGER = "gateway.mqtt.client"


class _Relay:
    """A TCP relay in front of the broker that the test can cut (abort both sides) or stall
    (``to_broker`` / ``to_client`` cleared: bytes in that direction wait)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.to_broker = asyncio.Event()
        self.to_client = asyncio.Event()
        self.to_broker.set()
        self.to_client.set()
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links.append((down_w, up_w))
        await asyncio.gather(
            self._pipe(down_r, up_w, self.to_broker),
            self._pipe(up_r, down_w, self.to_client),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event
    ) -> None:
        try:
            while data := await reader.read(65536):
                await gate.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    def cut(self) -> None:
        for down, up in self._links:
            down.transport.abort()
            up.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.to_broker.set()
        self.to_client.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _Inbox:
    """Collects every batch with its token; acks only when told to."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Message], Batch]] = []

    def __call__(self, messages: list[Message], token: Batch) -> None:
        self.batches.append((messages, token))

    @property
    def messages(self) -> list[Message]:
        return [m for batch, _ in self.batches for m in batch]

    def by_token(self) -> dict[Batch, list[Message]]:
        out: dict[Batch, list[Message]] = {}
        for batch, token in self.batches:
            out.setdefault(token, []).extend(batch)
        return out


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def relay(broker: Mosquitto) -> AsyncIterator[_Relay]:
    r = _Relay(broker.port)
    await r.start()
    yield r
    await r.close()


def _client(port: int, inbox: _Inbox, client_id: str = "ingest", **kw: object) -> MqttClient:
    kw.setdefault("subscriptions", [("c/#", 1)])
    kw.setdefault("reconnect_min", 0.05)
    kw.setdefault("reconnect_max", 0.2)
    return MqttClient("127.0.0.1", port, client_id, on_batch=inbox, **kw)  # type: ignore[arg-type]


async def test_receives_qos0_and_qos1(broker: Mosquitto) -> None:
    inbox = _Inbox()
    sessions: list[bool] = []
    client = _client(broker.port, inbox, on_connect=sessions.append)
    await client.start()
    try:
        assert client.connected and sessions == [False]
        broker.pub("c/1/door/d1/event", "-q", "0", "-m", "zero")
        broker.pub("c/1/door/d1/event", "-q", "1", "-m", "one", "-r")
        await until(lambda: len(inbox.messages) == 2)
        zero, one = inbox.messages
        assert (zero.topic, zero.payload, zero.qos, zero.packet_id) == (
            "c/1/door/d1/event",
            b"zero",
            0,
            0,
        )
        assert (one.payload, one.qos, one.retain, one.dup) == (b"one", 1, False, False)
        assert one.packet_id > 0 and abs(one.received_at_ms - time.time() * 1000) < 10_000
        client.ack(inbox.batches[-1][1], [one.packet_id])
        assert client.messages_received == 2 and client.acks_sent == 1 and client.unacked == 0
        assert client.bytes_in > 0
    finally:
        await client.stop()
    assert not client.connected

    # The retained message arrives for a new subscription, flagged retained.
    other = _Inbox()
    late = _client(broker.port, other, "late", clean_start=True, session_expiry=0)
    await late.start()
    try:
        await until(lambda: len(other.messages) == 1)
        assert other.messages[0].retain and other.messages[0].payload == b"one"
    finally:
        await late.stop()


async def test_unacked_messages_are_redelivered_until_acked(
    broker: Mosquitto, relay: _Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    inbox = _Inbox()
    sessions: list[bool] = []
    client = _client(relay.port, inbox, on_connect=sessions.append)
    await client.start()
    try:
        lines = "".join(f"{i}\n" for i in range(5000)).encode()
        broker.pub("c/1/meter/m1/telemetry", "-q", "1", "-l", stdin=lines)
        await until(lambda: len(inbox.messages) == 5000, what="5,000 first deliveries")
        [(first_token, first)] = inbox.by_token().items()
        assert client.unacked == 5000
        assert not any(m.dup for m in first)

        relay.cut()  # abrupt: no DISCONNECT, nothing acked
        await until(lambda: len(inbox.messages) == 10000, what="5,000 redeliveries")
        tokens = inbox.by_token()
        assert list(tokens) == [first_token, next(t for t in tokens if t is not first_token)]
        again_token = list(tokens)[1]
        again = tokens[again_token]
        assert sorted(m.payload for m in again) == sorted(m.payload for m in first)
        assert all(m.dup and m.qos == 1 for m in again)
        assert sessions == [False, True] and client.reconnects == 1

        client.ack(first_token, [m.packet_id for m in first])  # an earlier connection's token
        assert client.acks_dropped == 5000 and client.acks_sent == 0

        client.ack(again_token, [m.packet_id for m in again])
        assert client.acks_sent == 5000 and client.unacked == 0
        # A PUBACK for our own publish comes after the broker has read our PUBACKs.
        await client.publish("sync/marker", b"", qos=1)

        relay.cut()
        await until(lambda: client.reconnects == 2 and client.connected)
        await asyncio.sleep(1.0)
        assert len(inbox.messages) == 10000, "acked messages must not come back"
    finally:
        await client.stop()
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 2 and all(r.levelno == logging.WARNING for r in lost)


async def test_publish_qos1_waits_for_puback(broker: Mosquitto, relay: _Relay) -> None:
    inbox = _Inbox()
    watcher = _client(broker.port, inbox, "watcher", subscriptions=[("cmd/#", 1)])
    await watcher.start()
    client = _client(relay.port, _Inbox(), "commands", subscriptions=[])
    await client.start()
    try:
        await client.publish("cmd/door/d1", b'{"op":"unlock"}', qos=1, message_expiry=30)
        await client.publish("cmd/door/d2", b"q0", qos=0)
        await asyncio.gather(*(client.publish(f"cmd/many/{i}", b"x") for i in range(500)))
        await until(lambda: len(inbox.messages) == 502)
        assert inbox.messages[0].payload == b'{"op":"unlock"}'
        assert inbox.messages[0].message_expiry in (29, 30)

        relay.to_broker.clear()  # the broker never sees the next PUBLISH in time
        started = time.monotonic()
        with pytest.raises(MqttTimeout):
            await client.publish("cmd/door/d3", b"late", timeout=0.3)
        assert time.monotonic() - started < 1.0
        relay.to_broker.set()

        pending = asyncio.create_task(client.publish("cmd/door/d4", b"x", timeout=5))
        relay.to_broker.clear()
        await asyncio.sleep(0)
        relay.cut()
        with pytest.raises(NotConnected):
            await pending
        relay.to_broker.set()
    finally:
        await client.stop()
        await watcher.stop()
    with pytest.raises(NotConnected):
        await client.publish("cmd/door/d5", b"x")


async def test_broker_restart_is_logged_once_each_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(seconds)

    inbox = _Inbox()
    downs: list[BaseException | None] = []
    client = _client(
        broker.port,
        inbox,
        reconnect_min=0.05,
        reconnect_max=0.2,
        sleep=sleep,
        random=lambda: 1.0,
        on_disconnect=downs.append,
    )
    await client.start()
    try:
        broker.kill()
        await until(lambda: not client.connected)
        await asyncio.sleep(1.2)  # several attempts fail meanwhile
        assert not client.connected
        broker.start()
        await until(lambda: client.connected, what="reconnect after the restart")
        assert client.reconnects == 1 and len(downs) == 1
        assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # exponential, capped (random() == 1.0)

        broker.pub("c/1/parking/p1/state", "-q", "1", "-m", "after")
        await until(lambda: any(m.payload == b"after" for m in inbox.messages))
    finally:
        await client.stop()
        broker.stop()
    text = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    lost = [t for t in text if "lost" in t]
    recovered = [t for t in text if "recovered" in t]
    assert len(lost) == 1 and len(recovered) == 1, text
    assert f"{len(delays)} attempt(s)" in recovered[0] and len(delays) >= 4
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_silent_broker_is_detected_by_keepalive(
    relay: _Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    client = _client(relay.port, _Inbox(), keepalive=1, connect_timeout=1)
    await client.start()
    try:
        relay.to_client.clear()  # the broker still hears our PINGREQs; we hear nothing back
        started = time.monotonic()
        await until(lambda: not client.connected, timeout=5)
        assert 1.0 <= time.monotonic() - started <= 3.0
        relay.to_client.set()
        await until(lambda: client.connected, timeout=5)
    finally:
        await client.stop()
    [lost] = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert "no answer within 1.5 s" in lost


async def test_wrong_port_fails_fast() -> None:
    client = _client(free_port(), _Inbox(), connect_timeout=5)
    started = time.monotonic()
    with pytest.raises(NotConnected):
        await client.start()
    assert time.monotonic() - started < 1.0
    assert not client.connected


async def test_refused_connection_raises(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "closed", auth="allow_anonymous false")
    broker.start()
    try:
        client = _client(broker.port, _Inbox(), username="nobody", password="wrong")
        with pytest.raises(ConnectionRefused) as caught:
            await client.start()
        assert caught.value.reason_code in (0x86, 0x87)
    finally:
        broker.stop()


@pytest.mark.parametrize("coalesce_s", [0.0, 0.005])
async def test_reading_pauses_while_too_many_wait_for_their_ack(
    broker: Mosquitto, coalesce_s: float
) -> None:
    inbox = _Inbox()
    client = _client(broker.port, inbox, max_unacked=100, coalesce_s=coalesce_s)
    await client.start()
    try:
        payload = "x" * 2000
        lines = "".join(f"{i} {payload}\n" for i in range(3000)).encode()
        broker.pub("c/1/meter/m2/telemetry", "-q", "1", "-l", stdin=lines)
        await until(lambda: client.unacked > 100)
        await asyncio.sleep(0.5)
        held = len(inbox.messages)
        assert held < 3000, "reading should have paused"
        assert client.unacked == held

        acked = 0
        while acked < 3000:
            await until(lambda: len(inbox.messages) > acked, timeout=10)  # noqa: B023
            fresh = inbox.messages[acked:]
            client.ack(inbox.batches[-1][1], [m.packet_id for m in fresh])
            acked += len(fresh)
        assert client.unacked == 0 and client.acks_sent == 3000
        assert len({m.payload for m in inbox.messages}) == 3000
    finally:
        await client.stop()


async def test_a_trickle_is_read_in_batches_when_coalescing(broker: Mosquitto) -> None:
    """100 messages 2 ms apart: with 20 ms of coalescing they arrive in a handful of reads
    (each read handing over what gathered), every one of them, in order; the first message
    after a silence is read at once."""
    inbox = _Inbox()
    client = _client(broker.port, inbox, coalesce_s=0.02)
    sender = _client(broker.port, _Inbox(), "sender", subscriptions=[("none/#", 1)])
    await client.start()
    await sender.start()
    try:
        await asyncio.sleep(0.1)  # quiet
        t0 = time.monotonic()
        await sender.publish("c/1/meter/m1/telemetry", b"first", qos=0)
        await until(lambda: len(inbox.messages) == 1, what="the first message")
        assert time.monotonic() - t0 < 0.5
        await asyncio.sleep(0.1)  # the coalescing pause after that read is over
        for i in range(100):
            await sender.publish("c/1/meter/m1/telemetry", str(i).encode(), qos=0)
            await asyncio.sleep(0.002)
        await until(lambda: len(inbox.messages) == 101, what="all 100")
        trickle = inbox.batches[1:]
        assert [m.payload for batch, _ in trickle for m in batch] == [
            str(i).encode() for i in range(100)
        ]
        assert len(trickle) <= 30, [len(batch) for batch, _ in trickle]
    finally:
        await sender.stop()
        await client.stop()


async def test_session_survives_stop(broker: Mosquitto) -> None:
    inbox = _Inbox()
    client = _client(broker.port, inbox)
    await client.start()
    await client.stop()
    broker.pub("c/1/locker/l1/config", "-q", "1", "-r", "-m", "retained")
    for i in range(10):
        broker.pub("c/1/locker/l1/event", "-q", "1", "-m", str(i))
    sessions: list[bool] = []
    client = _client(broker.port, inbox, on_connect=sessions.append)
    await client.start()
    try:
        await until(lambda: len(inbox.messages) == 11)
        assert sessions == [True]
        assert [m.payload for m in inbox.messages] == [
            b"retained",
            *(str(i).encode() for i in range(10)),
        ]
        client.ack(inbox.batches[-1][1], [m.packet_id for m in inbox.messages])
    finally:
        await client.stop()
    # Subscribing again (Retain Handling 1) does not replay the retained message.
    client = _client(broker.port, inbox)
    await client.start()
    try:
        await asyncio.sleep(0.5)
        assert len(inbox.messages) == 11
    finally:
        await client.stop()


async def test_a_resumed_session_starts_without_waiting_behind_its_backlog(
    broker: Mosquitto,
) -> None:
    """The broker answers a SUBSCRIBE only after what it queued for a resumed session. A
    gateway that will not read past ``max_unacked`` unacknowledged messages before its commit
    would wait for that SUBACK for ever (start-up failed with "no SUBACK" behind a backlog)."""
    inbox = _Inbox()
    client = _client(broker.port, inbox)
    await client.start()
    await client.stop()
    lines = b"".join(b"%d\n" % i for i in range(2000))
    broker.pub("c/1/meter/m1/telemetry", "-q", "1", "-l", stdin=lines)  # 2,000 queued
    client = _client(broker.port, inbox, max_unacked=100, connect_timeout=3)
    await client.start()  # returns although reading stopped after ~100 unacked messages
    try:
        seen = 0
        while seen < 2000:  # the commit: ack what came, and reading resumes
            await until(lambda n=seen: len(inbox.messages) > n, timeout=20)
            fresh = inbox.messages[seen:]
            seen += len(fresh)
            client.ack(inbox.batches[-1][1], [m.packet_id for m in fresh])
        assert [m.payload for m in inbox.messages] == [b"%d" % i for i in range(2000)]
        assert client.connected and client.reconnects == 0
    finally:
        await client.stop()


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1, its own CA."""
    out = tmp_path / "certs"
    out.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(out / "key.pem"), "-out", str(out / "cert.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return out


async def test_tls(tmp_path: Path, certs: Path) -> None:
    broker = Mosquitto(
        tmp_path / "tls", extra=f"certfile {certs}/cert.pem\nkeyfile {certs}/key.pem\n"
    )
    broker.start()
    try:
        context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
        inbox = _Inbox()
        client = _client(broker.port, inbox, ssl=context, subscriptions=[("tls/#", 1)])
        await client.start()
        try:
            await client.publish("tls/x", b"secret", qos=1)
            await until(lambda: len(inbox.messages) == 1)
            assert inbox.messages[0].payload == b"secret"
        finally:
            await client.stop()
        wrong = _client(broker.port, _Inbox(), "wrong", ssl=ssl.create_default_context())
        with pytest.raises(NotConnected):
            await wrong.start()
    finally:
        broker.stop()
