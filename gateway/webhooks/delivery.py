"""Delivery: one asyncio task per endpoint sends its outbox in order, at least once.

The head of the queue is retried with exponential backoff and jitter (honouring
``Retry-After``) until the endpoint takes it: nothing behind it overtakes it, and every attempt
carries the same ``webhook-id``. After ``retry_for_s`` of failure the endpoint is marked
failing (an alert); retries continue at the longest interval, so nothing is dropped. The task
is woken when a notice is queued, never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from gateway.clock import Clock
from gateway.webhooks.outbox import Outbox, Pending
from gateway.webhooks.signing import Signer

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 3600.0


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """``Retry-After``: delta seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError):
        return None


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        endpoint: int,
        url: str,
        signer: Signer,
        clock: Clock,
        *,
        client: httpx.AsyncClient,
        timeout_s: float = 10.0,
        retry_for_s: float = 86400.0,
        base_s: float = 1.0,
        cap_s: float = 600.0,
        on_failing: Callable[[bool], None] | None = None,
        transaction: Callable[[Callable[[], None]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.endpoint = endpoint
        self.url = url
        self.signer = signer
        self.clock = clock
        self.client = client
        self.timeout_s = timeout_s
        self.retry_for_s = retry_for_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.on_failing = on_failing
        self._tx = transaction or (lambda fn: fn())
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failing = False
        self.erroring = False
        self.attempts_total = 0
        self.delivered_total = 0
        self.last_latency_ms = 0.0
        self.latencies_ms: deque[int] = deque(maxlen=1000)  # queued -> accepted, recent ones

    def latency_quantiles(self) -> dict[str, float]:
        """p50/p99/max of the recent deliveries, queued to accepted, in ms."""
        if not self.latencies_ms:
            return {}
        ordered = sorted(self.latencies_ms)

        def pick(q: float) -> float:
            return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])

        return {"0.5": pick(0.5), "0.99": pick(0.99), "1": float(ordered[-1])}

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self.failing = self.outbox.is_failing(self.endpoint)
        self._task = asyncio.create_task(self.run(), name=f"webhooks-{self.endpoint}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a task boundary: keep delivering
                log.exception("webhook endpoint %d: delivery step failed", self.endpoint)
                await self._wait(self.base_s)

    async def step(self) -> None:
        """Send the head of the queue once, or wait for something to do."""
        self._wake.clear()
        head = self.outbox.head(self.endpoint)
        if head is None:
            await self._wake.wait()
            return
        now = self.clock.now_ms()
        if head.next_ms > now:
            await self._wait((head.next_ms - now) / 1000)
            return
        error, retry_after = await self._post(head)
        now = self.clock.now_ms()
        if error is None:
            self._tx(lambda: self._delivered(head))
            return
        delay = self._backoff(head.attempts)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        self._tx(lambda: self._failed(head, now, int(now + delay * 1000), error))

    def _delivered(self, head: Pending) -> None:
        self.outbox.delivered(self.endpoint, head.row_id)
        self.delivered_total += 1
        self.latencies_ms.append(self.clock.now_ms() - head.created_ms)
        if self.erroring:
            log.warning("webhook endpoint %d: delivering again", self.endpoint)
            self.erroring = False
        if self.failing:
            self.failing = False
            self.outbox.set_failing(self.endpoint, None)
            if self.on_failing is not None:
                self.on_failing(False)

    def _failed(self, head: Pending, now_ms: int, next_ms: int, error: str) -> None:
        self.outbox.failed(self.endpoint, head.row_id, next_ms, error)
        if not self.erroring:
            log.warning("webhook endpoint %d: delivery failing: %s", self.endpoint, error)
            self.erroring = True
        if not self.failing and now_ms - head.created_ms >= self.retry_for_s * 1000:
            self.failing = True
            self.outbox.set_failing(self.endpoint, now_ms)
            log.error(
                "webhook endpoint %d: undelivered for %.1f h, marked failing",
                self.endpoint,
                (now_ms - head.created_ms) / 3_600_000,
            )
            if self.on_failing is not None:
                self.on_failing(True)

    def _backoff(self, attempts: int) -> float:
        full: float = min(self.cap_s, self.base_s * 2 ** min(attempts, 30))
        return full / 2 + self.rng.uniform(0, full / 2)

    async def _post(self, head: Pending) -> tuple[str | None, float | None]:
        now_s = self.clock.now_ms() / 1000
        headers = self.signer.headers(head.msg_id, now_s, head.body)
        self.attempts_total += 1
        t0 = self.clock.monotonic()
        try:
            r = await self.client.post(
                self.url, content=head.body, headers=headers, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200], None
        self.last_latency_ms = (self.clock.monotonic() - t0) * 1000
        if 200 <= r.status_code < 300:
            return None, None
        return f"HTTP {r.status_code}", retry_after_s(r.headers.get("retry-after"), now_s)

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` on the clock, or less if woken."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
