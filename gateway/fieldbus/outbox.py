"""What the bridge publishes, through the gateway's MQTT client, on the native topics.

A bounded queue (``MAX_PENDING``) drained by one task. Overflow policy: telemetry is dropped
(and counted) when the queue is full; status, events and acks wait for room, they are never
dropped. A failed publish is retried every second, in order; the failure is logged once when it
starts and once when publishing recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], Awaitable[None]]
MAX_PENDING = 2000


class Outbox:
    def __init__(self, publish: Publish, prefix: str) -> None:
        self._publish = publish
        self.prefix = prefix
        self._queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(MAX_PENDING)
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.dropped = 0

    def topic(self, community: str, device_class: str, device: str, message: str) -> str:
        return f"{self.prefix}/{community}/{device_class}/{device}/{message}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="fieldbus-outbox")

    async def stop(self, flush_s: float = 2.0) -> None:
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), flush_s)
        except TimeoutError:
            log.warning("field bus: %d messages unpublished at stop", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def telemetry(self, topic: str, body: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((topic, orjson.dumps(body), False))
        except asyncio.QueueFull:
            self.dropped += 1

    async def send(self, topic: str, body: dict[str, Any] | str, retain: bool = False) -> None:
        payload = body.encode() if isinstance(body, str) else orjson.dumps(body)
        await self._queue.put((topic, payload, retain))

    async def _drain(self) -> None:
        failing = False
        while True:
            topic, payload, retain = await self._queue.get()
            while True:
                try:
                    await self._publish(topic, payload, 1, retain)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the transport's errors: retry, log the transition
                    if not failing:
                        log.warning("field bus: publishing failed, retrying: %s", exc)
                        failing = True
                    await asyncio.sleep(1.0)
            if failing:
                log.info("field bus: publishing recovered")
                failing = False
            self.published += 1
            self._queue.task_done()
