"""The gateway's MQTT 5 client: one persistent session, messages delivered in batches and
acknowledged in batches after the caller's durable commit (see docs/mqtt-client.md).

Every socket read is parsed at once and all its PUBLISH packets go to ``on_batch(messages,
token)`` in one synchronous call; the caller commits them, then ``ack(token, packet_ids)``
writes all the PUBACKs at once. Acks for an earlier connection's token are dropped: the broker
redelivers those messages (DUP set) and the journal de-duplicates. Flow control: reading stops
while more than ``max_unacked`` delivered messages wait for their ack, resumes at half of it.
With ``coalesce_s``, a read that emptied the socket pauses reading that long, so that a steady
trickle arrives in batches of several messages instead of one wake-up per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random as _random
import ssl as _ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from gateway.mqtt import codec
from gateway.mqtt.codec import Packet, Received
from gateway.mqtt.errors import (
    ConnectionRefused,
    MqttError,
    MqttTimeout,
    NotConnected,
    ProtocolError,
    PublishRejected,
    SubscribeRejected,
    describe,
)

Message = Received
_log = logging.getLogger(__name__)

COALESCE_BELOW = 65536
"""A read shorter than this emptied the socket: with ``coalesce_s``, the next waits a little."""


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """The delivery token of one connection, handed to ``on_batch`` with every batch and given
    back to :meth:`MqttClient.ack`. Each connection has its own; compare by identity."""

    generation: int


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: parses, sorts packets, counts what waits for an ack."""

    def __init__(self, client: MqttClient, generation: int) -> None:
        loop = asyncio.get_running_loop()
        self.client = client
        self.batch = Batch(generation)
        self.parser = codec.Parser()
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[codec.Connack] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.pending: dict[int, asyncio.Future[Packet]] = {}
        self.quota_waiters: deque[asyncio.Future[None]] = deque()
        self.ready = self.closed = self.paused = self.heard = self.coalescing = False
        self.silent_ticks = self.unacked = self.inflight = 0
        self.send_quota = 65535
        self.keepalive = client.keepalive
        self.session_present = False
        self.reason: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.client._conn = self

    def data_received(self, data: bytes) -> None:
        if self.closed:  # stopping: the broker redelivers whatever was not acked
            return
        client = self.client
        client.bytes_in += len(data)
        self.heard = True
        parser = self.parser
        try:
            packets = parser.feed(data, client._clock_ms())
        except ProtocolError as exc:
            self.abort(exc)
            return
        if parser.controls:
            messages: list[Received] = []
            for packet in packets:
                if type(packet) is Received:
                    messages.append(packet)
                else:
                    self._control(packet)
        else:
            messages = cast(list[Received], packets)
        if messages:
            client.messages_received += len(messages)
            self.unacked += parser.qos1
            try:
                client._on_batch(messages, self.batch)
            except Exception:
                client._log.exception("on_batch failed; %d messages stay unacked", len(messages))
            if self.unacked > client.max_unacked and not self.paused and not self.closed:
                self.paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
        if (
            client.coalesce_s
            and len(data) < COALESCE_BELOW
            and not (self.paused or self.closed or self.coalescing)
        ):
            # the socket is drained: let a few milliseconds of traffic gather before the next
            # read, rather than waking up (and committing, acking) for every message or two
            self.coalescing = True
            self.transport.pause_reading()  # type: ignore[union-attr]
            client._call_later(client.coalesce_s, self._coalesced)

    def _coalesced(self) -> None:
        self.coalescing = False
        if not (self.paused or self.closed):
            self.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.reason is None:
            self.reason = exc or NotConnected("connection closed by the broker")
        failure = NotConnected(f"connection lost: {self.reason}")
        waiting: list[asyncio.Future[Any]] = [self.connack, *self.pending.values()]
        for future in waiting + list(self.quota_waiters):
            if not future.done():
                future.set_exception(failure)
        self.pending.clear()
        self.quota_waiters.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        self.client._connection_lost(self)

    def _control(self, packet: Packet) -> None:
        """Every packet but PUBLISH (a PINGRESP needs nothing: any byte is a sign of life)."""
        if isinstance(packet, (codec.Puback, codec.Suback, codec.Unsuback)):
            future = self.pending.get(packet.packet_id)
            if future is not None and not future.done():
                future.set_result(packet)
        elif isinstance(packet, codec.Connack):
            if self.connack.done():
                self.abort(ProtocolError("second CONNACK"))
                return
            if packet.reason_code < 0x80:
                self.ready = True
                self.session_present = packet.session_present
                self.send_quota = packet.receive_maximum
                if packet.server_keep_alive is not None:
                    self.keepalive = packet.server_keep_alive
            self.connack.set_result(packet)
        elif isinstance(packet, codec.Disconnect):
            detail = f": {packet.reason_string}" if packet.reason_string else ""
            self.abort(NotConnected(f"broker disconnected, {describe(packet.reason_code)}{detail}"))

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise NotConnected("not connected to the broker")
        self.transport.write(data)

    def abort(self, reason: BaseException) -> None:
        if self.reason is None:
            self.reason = reason
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def request(self, build: Callable[[int], bytes]) -> Packet:
        """Send a packet built around a fresh packet id; wait for the broker's answer to it."""
        packet_id = self.client._packet_id(self)
        future: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self.pending[packet_id] = future
        try:
            self.write(build(packet_id))
            return await future
        finally:
            self.pending.pop(packet_id, None)

    async def publish(self, build: Callable[[int], bytes]) -> Packet:
        """A QoS 1 request, holding one of the broker's Receive Maximum slots meanwhile."""
        while self.inflight >= self.send_quota:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.quota_waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the slot we were given
                raise
        self.inflight += 1
        try:
            return await self.request(build)
        finally:
            self.inflight -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self.quota_waiters:
            waiter = self.quota_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class MqttClient:
    """A supervised MQTT 5 subscriber with batch delivery and ack-after-commit. ``await start()``
    fails fast on the first connection; until ``await stop()`` a task reconnects after any loss
    (exponential backoff, full jitter)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        on_batch: Callable[[list[Message], Batch], None],
        subscriptions: list[tuple[str, int]],
        username: str | None = None,
        password: str | None = None,
        ssl: _ssl.SSLContext | None = None,
        keepalive: int = 30,
        session_expiry: int = 86400 * 7,
        receive_maximum: int = 65535,
        maximum_packet_size: int | None = None,
        max_unacked: int = 50_000,
        coalesce_s: float = 0.0,
        clean_start: bool = False,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        connect_timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        call_later: Callable[[float, Callable[[], None]], object] | None = None,
        logger: logging.Logger = _log,
        on_connect: Callable[[bool], None] | None = None,
        on_disconnect: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.anonymous = username is None  # a broker that lets us in so lets anyone in
        self.subscriptions = subscriptions
        self.keepalive = keepalive
        self.max_unacked = max_unacked
        self.coalesce_s = coalesce_s
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self._on_batch = on_batch
        self._ssl = ssl
        self._clean_start = clean_start
        self._connect_packet = functools.partial(
            codec.encode_connect,
            client_id,
            keepalive=keepalive,
            username=username,
            password=password,
            session_expiry=session_expiry,
            receive_maximum=receive_maximum,
            # advertised in CONNECT: the broker drops a bigger message for us instead of
            # sending it, so no device can make the gateway buffer megabytes. The parser keeps
            # no such limit: a broker that ignored the property would redeliver the same
            # message after every disconnect and stall the ingest
            maximum_packet_size=maximum_packet_size,
        )
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._connect_timeout = connect_timeout
        self._sleep = sleep
        self._random = random
        self._clock_ms = clock_ms
        self._call_later = call_later or (
            lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback)
        )
        self._log = logger
        self._conn: Connection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._resubscribing: asyncio.Task[None] | None = None
        self._generation = 0
        self._last_packet_id = 0
        self._stopping = False
        # counters for /metrics
        self.messages_received = self.acks_sent = self.acks_dropped = 0
        self.reconnects = self.bytes_in = 0

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and conn.ready and not conn.closed

    @property
    def unacked(self) -> int:
        """QoS 1 messages delivered on the current connection and not acked yet."""
        conn = self._conn
        return conn.unacked if conn is not None else 0

    async def start(self) -> None:
        """Connect, subscribe, then supervise. Raises NotConnected, MqttTimeout,
        ConnectionRefused or SubscribeRejected when the first attempt fails."""
        if self._supervisor is not None:
            raise RuntimeError("MqttClient already started")
        for topic_filter, qos in self.subscriptions:
            if qos not in (0, 1):
                raise ValueError(f"subscription QoS must be 0 or 1 ({topic_filter!r}: {qos})")
        self._stopping = False
        conn = await self._connect(clean_start=self._clean_start)
        if conn.session_present:
            # A resumed session already holds our subscriptions, and the broker sends what it
            # queued for us before it answers a SUBSCRIBE: the SUBACK can wait behind a backlog
            # of many thousands of messages. Subscribe again (the filters may have changed)
            # without holding the start up for it.
            self._resubscribing = asyncio.create_task(
                self._subscribe_resumed(conn), name=f"mqtt-resubscribe:{self.client_id}"
            )
        else:
            try:
                await self._subscribe(conn)
            except BaseException as exc:
                conn.abort(exc)
                raise
        self._supervisor = asyncio.create_task(
            self._supervise(conn), name=f"mqtt-supervisor:{self.client_id}"
        )

    async def stop(self) -> None:
        """DISCONNECT (the session and its expiry stay), close, stop the supervisor."""
        self._stopping = True
        resubscribing, self._resubscribing = self._resubscribing, None
        if resubscribing is not None and not resubscribing.done():
            resubscribing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resubscribing
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn = self._conn
        if conn is not None and not conn.closed and conn.transport is not None:
            if conn.ready:
                conn.transport.write(codec.encode_disconnect())
            conn.reason = NotConnected("client stopped")
            conn.closed = True
            if conn.transport.can_write_eof():
                # Half-close and let the broker close: a full close() with bytes still
                # unread makes the kernel reset the connection and drop our queued PUBACKs.
                conn.transport.write_eof()
            else:
                conn.transport.close()
            await asyncio.wait({conn.lost}, timeout=2.0)
            if not conn.lost.done():
                conn.transport.abort()
        self._conn = None

    def ack(self, token: Batch, packet_ids: Sequence[int]) -> None:
        """PUBACK these QoS 1 packet ids in one write. Dropped when the token is not the
        current connection's (the broker will redeliver those messages)."""
        conn = self._conn
        if conn is None or token is not conn.batch or conn.closed or conn.transport is None:
            self.acks_dropped += len(packet_ids)
            return
        if not packet_ids:
            return
        conn.transport.write(codec.encode_pubacks(packet_ids))
        count = len(packet_ids)
        self.acks_sent += count
        conn.unacked = max(0, conn.unacked - count)
        if conn.paused and conn.unacked <= self.max_unacked // 2:
            conn.paused = False
            if not conn.coalescing:
                conn.transport.resume_reading()

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        message_expiry: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 -- bounds the wait for PUBACK
    ) -> None:
        """Publish; at QoS 1 return once the broker's PUBACK arrived. Raises NotConnected
        (down or lost meanwhile), MqttTimeout, PublishRejected."""
        conn = self._conn
        if conn is None or not conn.ready or conn.closed:
            raise NotConnected(f"not connected to {self.host}:{self.port}")
        build = functools.partial(
            codec.encode_publish,
            topic,
            payload,
            qos=qos,
            retain=retain,
            message_expiry=message_expiry,
        )
        if qos == 0:
            conn.write(build())
            return
        try:
            async with asyncio.timeout(timeout):
                answer = await conn.publish(lambda packet_id: build(packet_id=packet_id))
        except TimeoutError as exc:
            raise MqttTimeout(f"no PUBACK for {topic!r} within {timeout} s") from exc
        assert isinstance(answer, codec.Puback)
        if answer.reason_code >= 0x80:
            raise PublishRejected(answer.reason_code, f"publish to {topic!r}")

    def _packet_id(self, conn: Connection) -> int:
        for _ in range(0xFFFF):
            self._last_packet_id = self._last_packet_id % 0xFFFF + 1
            if self._last_packet_id not in conn.pending:
                return self._last_packet_id
        raise MqttError("all 65535 packet ids are in flight")

    async def _connect(self, *, clean_start: bool) -> Connection:
        loop = asyncio.get_running_loop()
        self._generation += 1
        conn = Connection(self, self._generation)
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
                conn.write(self._connect_packet(clean_start=clean_start))
                connack = await conn.connack
        except TimeoutError as exc:
            conn.abort(exc)
            raise MqttTimeout(f"no CONNACK from {where} within {self._connect_timeout} s") from exc
        except OSError as exc:
            conn.abort(exc)
            raise NotConnected(f"cannot connect to {where}: {exc}") from exc
        except BaseException as exc:
            conn.abort(exc)
            raise
        if connack.reason_code >= 0x80:
            conn.abort(ConnectionRefused(connack.reason_code))
            raise ConnectionRefused(connack.reason_code, connack.reason_string or where)
        self._notify(self.on_connect, connack.session_present)
        return conn

    async def _subscribe_resumed(self, conn: Connection) -> None:
        """SUBSCRIBE on a resumed session, behind its backlog: a rejection is logged (the
        session's own subscriptions still deliver), any other failure drops the connection
        so that the supervisor reconnects."""
        try:
            await self._subscribe(conn, timeout_s=max(self._connect_timeout, 120.0))
        except SubscribeRejected as exc:
            self._log.error("on the resumed session: %s", exc)
        except MqttError as exc:
            conn.abort(exc)

    async def _subscribe(self, conn: Connection, timeout_s: float | None = None) -> None:
        if not self.subscriptions:
            return
        subscriptions = self.subscriptions
        try:
            async with asyncio.timeout(timeout_s or self._connect_timeout):
                # Retain Handling 1: retained messages only for a subscription that is new.
                suback = await conn.request(
                    lambda packet_id: codec.encode_subscribe(
                        packet_id, subscriptions, retain_handling=1
                    )
                )
        except TimeoutError as exc:
            raise MqttTimeout(f"no SUBACK within {timeout_s or self._connect_timeout} s") from exc
        codes = suback.reason_codes if isinstance(suback, codec.Suback) else ()
        if len(codes) != len(subscriptions):
            raise ProtocolError("SUBACK does not match the SUBSCRIBE")
        for (topic_filter, qos), code in zip(subscriptions, codes, strict=True):
            if code >= 0x80:
                raise SubscribeRejected(topic_filter, code)
            if code < qos:
                self._log.warning(
                    "broker granted QoS %d for %r (asked %d)", code, topic_filter, qos
                )

    def _connection_lost(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
        if conn.ready:
            self._notify(self.on_disconnect, conn.reason)

    def _notify(self, callback: Callable[..., None] | None, arg: object) -> None:
        try:
            if callback is not None:
                callback(arg)
        except Exception:
            self._log.exception("MQTT connection callback failed")

    async def _supervise(self, conn: Connection) -> None:
        try:
            while not self._stopping:
                await self._watch(conn)
                if not self._stopping:
                    conn = await self._reconnect(conn.reason)
        except Exception:
            self._log.exception("MQTT supervisor of %s:%d failed", self.host, self.port)
            raise

    async def _watch(self, conn: Connection) -> None:
        """Return when the connection is lost. Send PINGREQ every half keepalive; declare
        the link dead after 1.5 keepalive without a byte from the broker (unless paused)."""
        while not conn.lost.done():
            tick = conn.keepalive / 2 if conn.keepalive else None
            await asyncio.wait({conn.lost}, timeout=tick)
            if conn.lost.done() or tick is None:
                continue
            if conn.heard or conn.paused:
                conn.silent_ticks = 0
            else:
                conn.silent_ticks += 1
            conn.heard = False
            if conn.silent_ticks >= 3:
                conn.abort(MqttTimeout(f"no answer within {1.5 * conn.keepalive:g} s"))
            elif not conn.closed:
                conn.write(codec.PINGREQ)

    async def _reconnect(self, reason: BaseException | None) -> Connection:
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        where = f"{self.host}:{self.port}"
        self._log.warning("MQTT broker %s lost (%s); reconnecting in the background", where, reason)
        attempt = 0
        while True:
            attempt += 1
            cap = min(self._reconnect_max, self._reconnect_min * 2 ** min(attempt - 1, 32))
            await self._sleep(self._random() * cap)
            try:
                conn = await self._connect(clean_start=False)
            except MqttError as exc:
                self._log.debug("reconnect attempt %d to %s failed: %s", attempt, where, exc)
                continue
            try:
                if not conn.session_present:
                    await self._subscribe(conn)
            except SubscribeRejected as exc:
                self._log.error("after reconnecting to %s: %s", where, exc)
            except MqttError as exc:
                conn.abort(exc)
                self._log.debug("resubscribe after attempt %d failed: %s", attempt, exc)
                continue
            self.reconnects += 1
            took = loop.time() - down_since
            session = "resumed" if conn.session_present else "new"
            text = "MQTT broker %s recovered after %.1f s and %d attempt(s), session %s"
            self._log.info(text, where, took, attempt, session)
            return conn
