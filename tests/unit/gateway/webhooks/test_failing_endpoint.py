"""The whole alerting part with a webhook endpoint that stays down past ``retry_for_h``."""

from __future__ import annotations

import asyncio
import time

from devices.model import Decoded
from gateway.clock import FakeClock
from gateway.config import Registry, Settings
from gateway.rules.service import Alerting
from gateway.store.journal import Accepted, Store
from tests.support.webhook_receiver import SECRET, Receiver


async def until(predicate, within=20.0):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def test_failing_endpoint_raises_an_alert_and_clears_it(tmp_path):
    receiver = Receiver(strict_time=False)
    up = {"v": False}
    receiver.respond = lambda: (200, {}) if up["v"] else (500, {})
    clock = FakeClock(int(time.time() * 1000))
    settings = Settings.model_validate(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "webhooks": [{"url": receiver.url, "secret": SECRET, "retry_for_h": 0.5}],
        }
    )
    registry = Registry.model_validate(
        {"devices": [{"id": "gate-1", "community": "c1", "class": "access"}]}
    )
    store = Store(settings.store.path, now_ms=clock.now_ms)
    store.open()
    store.register([("gate-1", "c1", "access", "")])
    alerting = Alerting(settings, registry, store, clock=clock)
    alerting.start()
    try:
        st = store.devices["gate-1"]
        m = Decoded("access", "gate-1", "event", clock.now_ms(), seq=1, event="door_forced")
        batch = [Accepted(st, m, clock.now_ms())]
        store.write(batch, [])
        alerting.on_commit(batch)
        await until(lambda: alerting.alerts.get("webhook-1", "webhook_failing") is not None)
        assert receiver.received == []
        stats = alerting.outbox.stats(clock.now_ms())[0]
        assert stats["failing"] is True and stats["depth"] >= 2  # door_forced, webhook_failing
        up["v"] = True
        await until(lambda: alerting.alerts.get("webhook-1", "webhook_failing") is None)
        await until(lambda: alerting.outbox.head(1) is None)
        types = [(r["type"], r["data"]["rule"]) for r in receiver.received]
        assert types[0] == ("alert.raised", "door_forced")  # in order: the stuck one first
        assert [t for t in types if t[1] == "webhook_failing"] == [
            ("alert.raised", "webhook_failing"),
            ("alert.cleared", "webhook_failing"),
        ]
        assert receiver.bad_signatures == 0
    finally:
        await alerting.stop()
        store.close()
        receiver.close()
