"""Waiting for something that happens in another process or on the event loop: bounded,
polling, and failing with what was last seen (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    """Poll ``predicate`` every 0.1 s until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}: {last!r}")


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:  # noqa: ASYNC109
    """The same on the event loop: poll every 10 ms without blocking it."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}: {last!r}")
