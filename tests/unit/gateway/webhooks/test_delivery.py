"""Delivery against a real HTTP receiver, on a fake clock: outages, order, ids, backoff."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import time

import httpx
import pytest

from gateway.clock import FakeClock
from gateway.rules.db import transaction
from gateway.webhooks.delivery import Deliverer, retry_after_s
from gateway.webhooks.outbox import Outbox
from gateway.webhooks.signing import Signer
from tests.support.webhook_receiver import SECRET, Receiver


@pytest.fixture
def receiver():
    r = Receiver(strict_time=False)
    yield r
    r.close()


def make(tmp_path, url, clock, **kw):
    conn = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    outbox = Outbox(lambda: conn, [url], clock.now_ms)
    outbox.open()
    client = httpx.AsyncClient()
    flips: list[bool] = []
    d = Deliverer(
        outbox,
        outbox.endpoint_ids[url],
        url,
        Signer(SECRET),
        clock,
        client=client,
        timeout_s=2,
        on_failing=flips.append,
        rng=random.Random(1),
        **kw,
    )
    outbox.listeners.append(d.wake)
    return outbox, d, client, flips, conn


def publish(outbox, conn, clock, n):
    with transaction(conn):
        outbox.publish(
            "alert.raised",
            {"id": n, "n": n},
            community="c1",
            device_class="access",
            severity="critical",
            at_ms=clock.now_ms(),
        )


async def until(predicate, within=20.0):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def test_receiver_down_ten_minutes_then_everything_arrives_in_order(tmp_path, receiver):
    clock = FakeClock(int(time.time() * 1000))
    up_at = clock.now_ms() + 600_000
    receiver.respond = lambda: (503, {}) if clock.now_ms() < up_at else (200, {})
    outbox, d, client, _, conn = make(tmp_path, receiver.url, clock)
    d.start()
    n = 0
    while clock.now_ms() < up_at - 30_000:  # alerts keep happening during the outage
        publish(outbox, conn, clock, n)
        n += 1
        before = clock.now_ms()
        await until(lambda b=before: clock.now_ms() > b)  # the deliverer's backoff moves time
    await until(lambda: len(receiver.received) == n)
    await until(lambda: outbox.head(d.endpoint) is None)
    await d.stop()
    await client.aclose()
    assert n >= 5
    assert [r["data"]["n"] for r in receiver.received] == list(range(n))  # in order, all
    ids = [r["id"] for r in receiver.received]
    assert len(set(ids)) == n  # each id delivered once
    assert set(receiver.attempts) == set(ids)  # every retry reused an id that then arrived
    assert len(receiver.attempts) > n  # there were retries
    assert receiver.bad_signatures == 0
    assert outbox.head(d.endpoint) is None


async def test_retry_after_is_honoured_and_backoff_grows_with_jitter(tmp_path, receiver):
    clock = FakeClock(int(time.time() * 1000))
    answers = [(429, {"Retry-After": "120"}), (500, {}), (500, {}), (500, {}), (204, {})]
    seen: list[int] = []

    def respond():
        seen.append(clock.now_ms())
        return answers[min(len(seen) - 1, len(answers) - 1)]

    receiver.respond = respond
    outbox, d, client, _, conn = make(tmp_path, receiver.url, clock)
    publish(outbox, conn, clock, 0)
    d.start()
    await until(lambda: len(receiver.received) == 1)
    await d.stop()
    await client.aclose()
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(seen)]
    assert gaps[0] >= 120  # Retry-After
    assert 1.0 <= gaps[1] <= 4.0 and 2.0 <= gaps[2] <= 8.0 and 4.0 <= gaps[3] <= 16.0
    assert len(set(receiver.attempts)) == 1  # one webhook-id across all attempts


async def test_after_24_h_the_endpoint_is_failing_and_recovers(tmp_path, receiver):
    clock = FakeClock(int(time.time() * 1000))
    state = {"up": False}
    receiver.respond = lambda: (200, {}) if state["up"] else (500, {})
    outbox, d, client, flips, conn = make(tmp_path, receiver.url, clock)
    publish(outbox, conn, clock, 0)
    start = clock.now_ms()
    d.start()
    await until(lambda: flips == [True])
    assert clock.now_ms() - start >= 24 * 3600 * 1000
    assert outbox.stats(clock.now_ms())[0]["failing"] is True
    assert receiver.received == []  # still queued, never dropped
    state["up"] = True
    d.wake()
    await until(lambda: len(receiver.received) == 1)
    await until(lambda: flips == [True, False])
    await d.stop()
    await client.aclose()
    assert outbox.stats(clock.now_ms())[0]["failing"] is False


async def test_nothing_lost_across_a_restart_same_id(tmp_path, receiver):
    clock = FakeClock(int(time.time() * 1000))
    receiver.respond = lambda: (503, {})
    outbox, d, client, _, conn = make(tmp_path, receiver.url, clock)
    for i in range(3):
        publish(outbox, conn, clock, i)
    d.start()
    await until(lambda: len(receiver.attempts) >= 2)
    await d.stop()
    await client.aclose()
    conn.close()
    first_ids = set(receiver.attempts)
    receiver.respond = lambda: (200, {})
    outbox, d, client, _, conn = make(tmp_path, receiver.url, clock)  # a new process
    d.start()
    await until(lambda: len(receiver.received) == 3)
    await d.stop()
    await client.aclose()
    assert [r["data"]["n"] for r in receiver.received] == [0, 1, 2]
    assert first_ids <= {r["id"] for r in receiver.received}


def test_signature_verifies_with_standardwebhooks():
    r = Receiver(strict_time=True)
    try:
        body = b'{"type":"alert.raised","timestamp":"x","data":{}}'
        headers = Signer(SECRET).headers("msg_1", time.time(), body)
        assert r.verify(body, headers)
        assert not r.verify(body + b" ", headers)
        assert not r.verify(body, {**headers, "webhook-id": "msg_2"})
    finally:
        r.close()


def test_retry_after_parsing():
    assert retry_after_s("30", 0) == 30
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 60) == 60
    assert retry_after_s("soon", 0) is None
    assert retry_after_s(None, 0) is None
