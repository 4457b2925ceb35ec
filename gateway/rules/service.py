"""Alerting as one part of the gateway: outbox, alerts, tickets, the rules engine, one
deliverer per webhook endpoint, and the wake-up of live-stream readers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from gateway.alerts import AlertBook
from gateway.clock import Clock, SystemClock
from gateway.config import Registry, Settings
from gateway.rules.builtin import build_rules
from gateway.rules.engine import DeviceInfo, Engine
from gateway.store.journal import Accepted, DeviceState, Store
from gateway.tickets import TicketBook
from gateway.webhooks.delivery import Deliverer
from gateway.webhooks.outbox import Outbox
from gateway.webhooks.signing import Signer

log = logging.getLogger(__name__)


class AlertNotFound(LookupError):
    """No such alert, or not one the caller may see (the same answer: no existence leak)."""


class AlertCleared(Exception):
    """The alert is already cleared: there is nothing to acknowledge."""


class StreamHub:
    """Wakes every live-stream reader when something new is committed (no data passes here:
    readers read the store from their own position, so a reconnect resumes the same way)."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.add(ev)
        return ev

    def unsubscribe(self, ev: asyncio.Event) -> None:
        self._waiters.discard(ev)

    def notify(self) -> None:
        for ev in self._waiters:
            ev.set()

    @property
    def subscribers(self) -> int:
        return len(self._waiters)


class Alerting:
    """Built by the gateway after the store is open; ``start()`` before MQTT ingest starts
    (it replays what a crash left unprocessed), ``stop()`` at shutdown."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        store: Store,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        conn: Callable[[], sqlite3.Connection] = lambda: store.conn  # noqa: E731
        self.outbox = Outbox(conn, [w.url for w in settings.webhooks], self.clock.now_ms)
        bridged = {b.id for b in settings.serial} | {
            d.id for b in settings.serial for d in b.devices
        }
        self.alerts = AlertBook(conn, self.outbox)
        self.tickets = TicketBook(conn, self.outbox)
        self.engine = Engine(
            conn,
            self.clock,
            build_rules(settings.rules),
            self.alerts,
            self.tickets,
            self.outbox,
            [
                DeviceInfo(
                    d.id, d.community, d.device_class, d.parent, d.expect_every_s, d.id in bridged
                )
                for d in registry.devices
            ],
            store.devices,
            store.mark_offline,
        )
        self.hub = StreamHub()
        self._transport = transport
        self.client: httpx.AsyncClient | None = None
        self.deliverers: list[Deliverer] = []

    def start(self) -> None:
        self.outbox.open()
        self.engine.open()
        self.outbox.listeners.append(self.hub.notify)
        self.client = httpx.AsyncClient(
            transport=self._transport, timeout=10.0, follow_redirects=False
        )
        for w in self.settings.webhooks:
            eid = self.outbox.endpoint_ids[w.url]
            d = Deliverer(
                self.outbox,
                eid,
                w.url,
                Signer(w.secret),
                self.clock,
                client=self.client,
                timeout_s=w.timeout_s,
                retry_for_s=w.retry_for_h * 3600,
                on_failing=self._failing_callback(eid),
                transaction=self.engine.external,
            )
            self.outbox.listeners.append(d.wake)
            self.deliverers.append(d)
        self.engine.replay(self.store.devices)
        for d in self.deliverers:
            d.start()

    def _failing_callback(self, eid: int) -> Callable[[bool], None]:
        device = f"webhook-{eid}"

        def on_failing(failing: bool) -> None:
            now = self.clock.now_ms()
            if failing:
                self.engine.fault(device, "webhook_failing", {"endpoint": eid}, now)
            else:
                self.engine.clear_now(device, "webhook_failing", now, "endpoint delivering")

        return on_failing

    def command_fault(self, device: DeviceState, rule: str, details: dict[str, Any]) -> None:
        """A fault the command service saw (its fault listener): a device executed a command
        after the gateway answered that it had not (``command_late_ok``), or a door is flooded
        with attempts (``door_attempts_flood``). Raised here, not from the journal: the fact is
        the gateway's own (its answer against the device's ack, its count of attempts)."""
        now = self.clock.now_ms()

        def raise_alert() -> None:
            self.engine.fault(device.device, rule, details, now)

        self.engine.external(raise_alert)

    def store_health(self, reasons: Mapping[str, str]) -> None:
        """The store's pressure verdict (its alert hook): ``store_degraded`` is raised on the
        device ``store`` while any reason holds, and cleared once none does (after the rule's
        ``clear_after_s``, so that a store at its quota keeps one alert). Raises when the
        store cannot take the write (the caller tries again)."""
        now = self.clock.now_ms()

        def change() -> None:
            if reasons:
                self.engine.fault("store", "store_degraded", dict(reasons), now)
            else:
                self.engine.ok("store", "store_degraded", now, "store writing again")

        self.engine.external(change)

    def store_replaced(self, moved_to: str, problem: str) -> None:
        """The store failed its check at start-up and was moved aside."""
        now = self.clock.now_ms()
        details = {"moved_to": moved_to, "problem": problem}

        def raise_alert() -> None:
            self.engine.fault("store", "store_replaced", details, now)

        self.engine.external(raise_alert)

    def on_commit(self, accepted: Sequence[Accepted]) -> None:
        self.engine.on_commit(accepted)
        if self.hub.subscribers and any(a.message.kind == "event" for a in accepted):
            self.hub.notify()

    async def stop(self) -> None:
        for d in self.deliverers:
            await d.stop()
        self.engine.close()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def acknowledge(self, alert_id: int, by: str, may_see: Callable[[str], bool]) -> dict[str, Any]:
        """Acknowledge an alert on behalf of ``by`` (a platform key, a console operator);
        the one way the API and the console do it."""
        found = self.alerts.by_id(alert_id)
        if found is None or not may_see(found.community):
            raise AlertNotFound(f"no alert {alert_id}")
        if found.status == "cleared":
            raise AlertCleared(f"alert {alert_id} is already cleared")
        return dict(self.engine.acknowledge(alert_id, by).data())

    def stats(self) -> dict[str, Any]:
        return {
            "alerts": self.alerts.counts(),
            "tickets_open": len(self.tickets.open),
            "endpoints": self.outbox.stats(self.clock.now_ms()),
            "attempts": {d.endpoint: d.attempts_total for d in self.deliverers},
            "latency_ms": {d.endpoint: d.latency_quantiles() for d in self.deliverers},
            "stream_subscribers": self.hub.subscribers,
        }
