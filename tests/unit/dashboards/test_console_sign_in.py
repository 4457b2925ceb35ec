"""Console sign-in limits: per client address (whatever name or key is tried), per name at an
address, for everybody together, X-Forwarded-For believed only from a trusted proxy, and at
most a bounded amount of password hashing in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.console.password import hash_password
from gateway.console.throttle import Busy, SignInGuard
from tests.support.console import PLATFORM_KEY, console_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PASSWORD = "a long operator password"


def settings(**console: object) -> Settings:
    return Settings.model_validate(
        {
            "auth": {"platform_keys": [PLATFORM_KEY]},
            "console": {
                "operators": [{"name": "guard", "password_hash": hash_password(PASSWORD)}],
                **console,
            },
        }
    )


Client = Callable[..., TestClient]


@pytest.fixture
def client(tmp_path: Path) -> Client:
    """``client(peer, **console settings)``: a test client connecting from ``peer``."""

    def make(peer: str = "198.51.100.7", **console: object) -> TestClient:
        app = console_app(settings(**console), tmp_path / "store.db")
        return TestClient(app, client=(peer, 40000))

    return make


def sign_in(c: TestClient, headers: dict[str, str] | None = None, **form: str) -> int:
    r = c.post("/console/login", data=form, headers=headers or {}, follow_redirects=False)
    return r.status_code


def test_fresh_names_from_one_address_are_throttled(client: Client) -> None:
    c = client(sign_in_failures_per_address=4)
    for i in range(4):
        assert sign_in(c, operator=f"name-{i}", password="guess") == 303
    assert sign_in(c, operator="name-x", password="guess") == 429
    assert sign_in(c, key=PLATFORM_KEY) == 429  # the address, whatever it tries
    other = TestClient(c.app, client=("198.51.100.8", 40000))
    assert sign_in(other, key=PLATFORM_KEY) == 303  # another address is not locked out


def test_wrong_platform_keys_are_throttled_too(client: Client) -> None:
    c = client(sign_in_failures_per_address=3)
    for i in range(3):
        assert sign_in(c, key=f"not-a-key-{i:08d}-padding") == 303
    assert sign_in(c, key="not-a-key-x-padding-padding") == 429
    assert sign_in(c, key=PLATFORM_KEY) == 429


def test_x_forwarded_for_from_a_client_changes_nothing(client: Client) -> None:
    c = client(sign_in_failures_per_address=3)
    for i in range(3):
        fake = {"X-Forwarded-For": f"203.0.113.{i}"}
        assert sign_in(c, fake, operator="guard", password=f"guess-{i}") == 303
    assert sign_in(c, {"X-Forwarded-For": "203.0.113.99"}, key=PLATFORM_KEY) == 429


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(client: Client) -> None:
    c = client("10.0.0.2", sign_in_failures_per_address=2, trusted_proxies=["10.0.0.0/24"])
    # the client wrote the left entry itself; the proxy appended the address it saw
    attacker = {"X-Forwarded-For": "1.2.3.4, 203.0.113.5"}
    for i in range(2):
        attacker["X-Forwarded-For"] = f"1.2.3.{i}, 203.0.113.5"
        assert sign_in(c, attacker, operator="guard", password="guess") == 303
    assert sign_in(c, attacker, key=PLATFORM_KEY) == 429
    assert sign_in(c, {"X-Forwarded-For": "203.0.113.6"}, key=PLATFORM_KEY) == 303


def test_ipv6_clients_are_counted_by_their_64(client: Client) -> None:
    c = client("2001:db8:1:2::10", sign_in_failures_per_address=2)
    for _ in range(2):
        assert sign_in(c, key="wrong-key-wrong-key-wrong") == 303
    same_64 = TestClient(c.app, client=("2001:db8:1:2::beef", 40000))
    assert sign_in(same_64, key=PLATFORM_KEY) == 429


def test_failures_from_everywhere_together_are_limited(client: Client) -> None:
    c = client(sign_in_failures_per_address=100, sign_in_failures_overall=5)
    for i in range(5):
        peer = TestClient(c.app, client=(f"192.0.2.{i}", 40000))
        assert sign_in(peer, operator=f"n{i}", password="guess") == 303
    assert sign_in(TestClient(c.app, client=("192.0.2.99", 40000)), key=PLATFORM_KEY) == 429


def test_a_mistyped_name_blocks_that_name_before_the_address(client: Client) -> None:
    c = client(sign_in_failures_per_address=10, sign_in_failures_per_name=2)
    for _ in range(2):
        assert sign_in(c, operator="guard", password="typo") == 303
    assert sign_in(c, operator="guard", password=PASSWORD) == 429
    assert sign_in(c, key=PLATFORM_KEY) == 303


def test_concurrent_password_sign_ins_hash_one_at_a_time_and_the_excess_is_refused(
    client: Client,
) -> None:
    """40 attempts at once: the hashing runs one at a time, at most ``waiting`` queue behind
    it, the rest is refused without hashing."""
    app = client(password_checks_at_once=1, password_checks_waiting=3).app

    async def attempts() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(
                *(
                    c.post("/console/login", data={"operator": f"n{i}", "password": "x"})
                    for i in range(40)
                )
            )
        return [r.status_code for r in rs]

    codes = asyncio.run(attempts())
    # one hashing and three waiting get an answer (a check that ends while the attempts are
    # still arriving may let one more in); the rest are refused without hashing
    assert set(codes) <= {303, 429}
    assert codes.count(303) >= 4 and codes.count(429) >= 30


def test_the_guard_never_runs_more_checks_than_allowed_at_once() -> None:
    guard = SignInGuard(checks_at_once=2, checks_waiting=5)
    running, peak, lock = [0], [0], threading.Lock()

    def work() -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return True

    async def main() -> list[object]:
        return await asyncio.gather(*(guard.check(work) for _ in range(20)), return_exceptions=True)

    results = asyncio.run(main())
    assert peak[0] == 2
    assert sum(r is True for r in results) == 7
    assert sum(isinstance(r, Busy) for r in results) == 13
