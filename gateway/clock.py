"""The gateway's one injectable clock: wall time (persisted deadlines), monotonic time, a
scheduler and sleep.

Built once by the composition root and handed to every part that reads the time or waits
(the rules' timers, the deliverers, the retention, the API's answers). Timers are stored as
wall-clock deadlines where they must survive a restart, and scheduled on the monotonic clock
of the running process. :class:`FakeClock` moves 48 hours in a call.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall time, epoch milliseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def call_at_ms(self, deadline_ms: int, callback: Callable[..., None], *args: Any) -> Handle:
        """Run ``callback(*args)`` once the wall time reaches ``deadline_ms`` (at once if
        past)."""
        ...

    def call_later(self, delay_s: float, callback: Callable[..., None], *args: Any) -> Handle:
        """Run ``callback(*args)`` once ``delay_s`` seconds have passed (monotonic)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock, scheduling on the running asyncio loop."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic(self) -> float:
        return time.monotonic()

    def call_at_ms(self, deadline_ms: int, callback: Callable[..., None], *args: Any) -> Handle:
        delay = max(0.0, (deadline_ms - self.now_ms()) / 1000)
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def call_later(self, delay_s: float, callback: Callable[..., None], *args: Any) -> Handle:
        return asyncio.get_running_loop().call_later(max(0.0, delay_s), callback, *args)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _FakeHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock moved by the test: ``advance(ms)`` runs every callback that falls due, in order,
    with the clock set to each callback's deadline."""

    def __init__(self, start_ms: int = 1_763_700_000_000) -> None:
        self._now = start_ms
        self._start = start_ms
        self._heap: list[tuple[int, int, _FakeHandle, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._start) / 1000

    def call_at_ms(self, deadline_ms: int, callback: Callable[..., None], *args: Any) -> Handle:
        h = _FakeHandle()
        entry = (max(deadline_ms, self._now), next(self._seq), h, callback, args)
        heapq.heappush(self._heap, entry)
        return h

    def call_later(self, delay_s: float, callback: Callable[..., None], *args: Any) -> Handle:
        return self.call_at_ms(self._now + max(0, int(delay_s * 1000)), callback, *args)

    def advance(self, ms: int) -> None:
        target = self._now + ms
        while self._heap and self._heap[0][0] <= target:
            at, _, h, cb, args = heapq.heappop(self._heap)
            if h.cancelled:
                continue
            self._now = at
            cb(*args)
        self._now = target

    async def sleep(self, seconds: float) -> None:
        self.advance(int(seconds * 1000))
        await asyncio.sleep(0)
