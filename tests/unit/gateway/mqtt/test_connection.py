"""The MQTT connection fed bytes through a fake transport, on a fake clock (no socket, no
broker, no sleeping): flow control at ``max_unacked``, read coalescing, the broker's Receive
Maximum for our own publishes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.clock import FakeClock
from gateway.mqtt import Batch, MqttClient, Received, codec
from gateway.mqtt.client import Connection


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.reading = True
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def connack(receive_maximum: int | None = None) -> bytes:
    props = b"" if receive_maximum is None else b"\x21" + receive_maximum.to_bytes(2, "big")
    body = b"\x00\x00" + codec.encode_varint(len(props)) + props
    return b"\x20" + codec.encode_varint(len(body)) + body


def publish(packet_id: int, payload: bytes = b"{}") -> bytes:
    return codec.encode_publish(
        "community/c1/meter/m-1/telemetry", payload, qos=1, packet_id=packet_id
    )


class World:
    def __init__(self, **kwargs: Any) -> None:
        self.clock = FakeClock()
        self.batches: list[tuple[list[Received], Batch]] = []
        self.client = MqttClient(
            "127.0.0.1",
            1,
            "courtyard-test",
            on_batch=lambda messages, token: self.batches.append((list(messages), token)),
            subscriptions=[("community/#", 1)],
            clock_ms=self.clock.now_ms,
            call_later=self.clock.call_later,
            **kwargs,
        )
        self.conn = Connection(self.client, 1)
        self.transport = FakeTransport()
        self.conn.connection_made(self.transport)
        self.conn.data_received(connack(kwargs.get("receive_maximum")))
        self.clock.advance(100)  # past any coalescing delay after the CONNACK

    def received_ids(self) -> list[int]:
        return [m.packet_id for batch, _ in self.batches for m in batch]


async def test_reading_pauses_past_max_unacked_and_resumes_at_half_once_acked() -> None:
    w = World(max_unacked=4)
    w.conn.data_received(b"".join(publish(i) for i in range(1, 6)))
    assert w.received_ids() == [1, 2, 3, 4, 5]
    assert not w.transport.reading and w.conn.paused  # 5 unacked > 4: no more reads
    assert w.transport.written == b""  # nothing acknowledged before the commit
    token = w.batches[0][1]
    w.client.ack(token, [1, 2])
    assert not w.transport.reading  # 3 unacked: still above half of 4
    w.client.ack(token, [3])
    assert w.transport.reading and not w.conn.paused
    assert w.transport.written == codec.encode_pubacks([1, 2]) + codec.encode_pubacks([3])


async def test_an_ack_for_an_earlier_connection_is_dropped_not_sent() -> None:
    w = World()
    w.conn.data_received(publish(7))
    w.client.ack(Batch(0), [7])  # a token of a connection that is gone
    assert w.transport.written == b"" and w.client.acks_dropped == 1


async def test_a_short_read_waits_the_coalescing_delay_before_the_next() -> None:
    w = World(coalesce_s=0.002)
    w.conn.data_received(publish(1))
    assert not w.transport.reading and w.conn.coalescing  # the socket was drained
    w.clock.advance(1)
    assert not w.transport.reading
    w.clock.advance(1)
    assert w.transport.reading and not w.conn.coalescing


async def test_a_read_that_pauses_for_flow_control_starts_no_coalescing_delay() -> None:
    w = World(coalesce_s=0.002, max_unacked=1)
    w.conn.data_received(publish(1) + publish(2))
    assert w.conn.paused and not w.conn.coalescing
    w.clock.advance(5)
    assert not w.transport.reading  # no timer resumes it: only the acks do
    w.client.ack(w.batches[0][1], [1, 2])
    assert w.transport.reading


async def test_a_long_read_is_followed_at_once_without_coalescing() -> None:
    w = World(coalesce_s=0.002)
    big = b"".join(publish(i, b"x" * 100) for i in range(1, 800))  # over 64 KiB in one read
    w.conn.data_received(big)
    assert w.transport.reading and not w.conn.coalescing


async def test_publishes_beyond_the_brokers_receive_maximum_wait_for_a_slot() -> None:
    w = World(receive_maximum=2)
    assert w.conn.send_quota == 2
    sent = [
        asyncio.ensure_future(
            w.conn.publish(
                lambda pid, n=n: codec.encode_publish("t", b"%d" % n, qos=1, packet_id=pid)
            )
        )
        for n in range(3)
    ]
    await asyncio.sleep(0)
    assert w.conn.inflight == 2 and len(w.conn.quota_waiters) == 1
    first = min(w.conn.pending)
    w.conn.data_received(codec.encode_puback(first))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sent[0].done() and w.conn.inflight == 2 and not w.conn.quota_waiters
    for pid in sorted(w.conn.pending):
        w.conn.data_received(codec.encode_puback(pid))
    await asyncio.gather(*sent)
    assert w.conn.inflight == 0


async def test_a_malformed_packet_aborts_the_connection_with_the_reason() -> None:
    w = World()
    w.conn.data_received(b"\x00\x00")  # packet type 0 is reserved
    assert w.transport.aborted and w.conn.closed
    assert isinstance(w.conn.reason, codec.ProtocolError)


@pytest.mark.parametrize("split", [1, 2, 3, 7])
async def test_a_packet_split_across_reads_is_delivered_once_whole(split: int) -> None:
    w = World()
    data = publish(9, b'{"power_w": 5}')
    for i in range(0, len(data), split):
        w.conn.data_received(data[i : i + split])
    assert w.received_ids() == [9]
    assert w.batches[0][0][0].payload == b'{"power_w": 5}'
