"""Sign-in throttling for the console: who is asking, how often they failed, and how much
password hashing may run at once.

Each operator sign-in costs a scrypt (about 50 ms of one core, on purpose). Counting failures
per operator name alone let an attacker try a fresh name every time and never be slowed, and
40 attempts in parallel took the CPU from the door unlocks. So:

- failures are counted per client address (all names and platform keys together), per
  operator name at that address (a small limit, so that a guard who mistyped is not locked out
  by a stranger elsewhere), and for all addresses together (a flood from many addresses is
  refused too, at the price of a minute without sign-ins);
- the client address is the connection's peer; ``X-Forwarded-For`` is believed only when the
  peer is a configured proxy (``[console] trusted_proxies``), so a client cannot pick its own;
  an IPv6 client is counted by its /64, which one host usually owns whole;
- at most ``checks_at_once`` password checks run (in worker threads) and ``checks_waiting``
  wait; any more are refused at once, so the hashing can never take more than that share of
  the CPU, however many attempts arrive.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Collection
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Busy(Exception):
    """Too many password checks running and waiting: refuse without hashing."""


class FailureCounter:
    """At most ``limit`` failures per key in ``window_s`` (a sliding window, in memory: a
    restart forgets). Bounded: past ``max_keys`` keys, the oldest are forgotten first."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.monotonic = monotonic
        self.max_keys = max_keys
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = self.monotonic()
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def failed(self, key: str) -> None:
        self._recent(key)
        if key not in self._failures and len(self._failures) >= self.max_keys:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(key, []).append(self.monotonic())

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


def parse_networks(values: Collection[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` -> networks; ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: Request, trusted_proxies: tuple[Network, ...]) -> str:
    """The address a sign-in is counted under.

    The peer of the connection, unless the peer is a trusted proxy: then the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy (entries left of it were written by
    the client itself and prove nothing). IPv6 addresses are reduced to their /64.
    """
    peer = request.client.host if request.client else ""
    address = peer
    if trusted_proxies and _in(peer, trusted_proxies):
        hops = [
            h.strip()
            for line in request.headers.getlist("x-forwarded-for")
            for h in line.split(",")
            if h.strip()
        ]
        for hop in reversed(hops):
            address = hop
            if not _in(hop, trusted_proxies):
                break
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]  # not an address (a test client's name): counted as it is
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SignInGuard:
    """The console's sign-in limits (see the module's docstring); one per app."""

    def __init__(
        self,
        *,
        per_address: int = 10,
        per_name: int = 5,
        overall: int = 100,
        window_s: float = 60.0,
        checks_at_once: int = 1,
        checks_waiting: int = 8,
        trusted_proxies: tuple[Network, ...] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.trusted_proxies = trusted_proxies
        self._address = FailureCounter(per_address, window_s, monotonic)
        self._name = FailureCounter(per_name, window_s, monotonic)
        self._all = FailureCounter(overall, window_s, monotonic, max_keys=1)
        self._checks_at_once = checks_at_once
        self._checks_waiting = checks_waiting
        self._slots: asyncio.Semaphore | None = None  # made on the loop that uses it
        self._waiting = 0
        self.refused_busy = 0

    def address(self, request: Request) -> str:
        return client_address(request, self.trusted_proxies)

    def blocked(self, address: str, name: str = "") -> bool:
        """Whether a sign-in from ``address`` (for operator ``name``) is refused now."""
        if self._all.blocked("") or self._address.blocked(address):
            return True
        return bool(name) and self._name.blocked(f"{name}@{address}")

    def failed(self, address: str, name: str = "") -> None:
        self._all.failed("")
        self._address.failed(address)
        if name:
            self._name.failed(f"{name}@{address}")

    def succeeded(self, address: str, name: str = "") -> None:
        # only the name's count: a valid credential must not reset the address's, or one
        # known password would buy unlimited guesses at the others
        if name:
            self._name.forget(f"{name}@{address}")

    async def check(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a password check) in a worker thread, at most ``checks_at_once`` at
        a time; :class:`Busy` at once when ``checks_waiting`` already wait."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._checks_at_once)
        if self._slots.locked() and self._waiting >= self._checks_waiting:
            self.refused_busy += 1
            raise Busy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await run_in_threadpool(work)
        finally:
            self._slots.release()
