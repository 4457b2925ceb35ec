"""The gateway as one service: builds the parts from the settings and runs them.

This is the composition root (the FastAPI lifespan creates one :class:`Gateway`); no part
creates another behind the scenes, so each can be tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.commands import CommandService
from gateway.config import Registry, Settings
from gateway.fieldbus.bridge import Fieldbus, registry_with_serial
from gateway.ingest import Acker, Ingest
from gateway.mqtt import topics
from gateway.mqtt.broker import EmbeddedBroker
from gateway.mqtt.client import Batch, MqttClient, Received
from gateway.rules.service import Alerting
from gateway.store.journal import Accepted, Store
from gateway.store.queries import Queries
from gateway.store.schema import wal_checkpoint

if TYPE_CHECKING:  # imported when configured: influxdb-client is not loaded otherwise
    from gateway.sinks.influx import InfluxSink
    from gateway.sinks.process import SinkProcess

log = logging.getLogger(__name__)

OFFLINE_AFTER_PERIODS = 3
RETENTION_EVERY_S = 3600.0
WAL_CHECKPOINT_EVERY_S = 1.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _release_startup_memory() -> None:
    """Give the heap that start-up used and freed (the parsed community file: ~1 KiB per
    device) back to the operating system, so resident memory reflects what is kept; then
    freeze what start-up keeps (registry, device states, the app) out of the garbage
    collector's sight. Measured under 5,000 readings/s and 50 residents unlocking at once:
    every full collection walked those ~80,000 objects and stopped the loop for 50-75 ms, a
    few times a minute; once frozen, a full collection takes about 5 ms."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    gc.freeze()


def new_ingest(settings: Settings, store: Store, acker: Acker) -> Ingest:
    """The ingest as the configuration sets it up (also used by ``bench/ingest_cpu.py``)."""
    st = settings.store
    return Ingest(
        store,
        prefix=settings.mqtt.prefix,
        acker=acker,
        commit_interval_s=st.commit_interval_ms / 1000,
        commit_max=st.commit_max_messages,
        telemetry_interval_s=st.telemetry_commit_interval_ms / 1000,
        max_payload_bytes=st.max_payload_bytes,
    )


class Gateway:
    """Store, embedded broker (if no broker is configured), MQTT ingest and sinks."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        now_ms: Callable[[], int] = _now_ms,
    ) -> None:
        registry = registry_with_serial(registry, settings.serial)  # RS-485 buses, devices
        self.settings = settings
        self.registry = registry
        self.fieldbus: Fieldbus | None = None
        self.now_ms = now_ms
        self.started_ms = now_ms()
        self.store = Store(settings.store.path, now_ms=now_ms, durability=settings.store.durability)
        self.queries = Queries(settings.store.path)
        self.broker: EmbeddedBroker | None = None
        self.client: MqttClient | None = None
        self.ingest: Ingest | None = None
        self.sink: InfluxSink | SinkProcess | None = None
        self.alerting: Alerting | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.authenticator = Authenticator(settings.auth, [c.id for c in registry.communities])
        self.audit = AuditLog(
            settings.store.path, now_ms=now_ms, durability=settings.store.durability
        )
        self.commands = CommandService(
            settings.commands,
            prefix=settings.mqtt.prefix,
            devices=self.store.devices,
            registry=registry.by_id(),
            audit=self.audit,
            publisher=lambda: self.client,
            now_ms=now_ms,
        )
        self.expect_every = {
            d.id: d.expect_every_s for d in registry.devices if d.expect_every_s is not None
        }

    @property
    def mqtt_url(self) -> str:
        return self.broker.url if self.broker is not None else (self.settings.mqtt.url or "")

    async def start(self) -> None:
        s = self.settings
        Path(s.store.path).parent.mkdir(parents=True, exist_ok=True)
        self.store.open()
        self.audit.open()
        self.store.register(
            (d.id, d.community, d.device_class, d.building) for d in self.registry.devices
        )
        if s.mqtt.url is None:
            self.broker = EmbeddedBroker(s.data_dir / "broker")
            await self.broker.start()
            host, port = "127.0.0.1", int(self.broker.port or 0)
        else:
            host, port = s.mqtt.host_port
        self.ingest = new_ingest(s, self.store, self._ack)
        self.ingest.listeners.append(self.commands.on_commit)
        if s.influxdb is not None:
            self._start_influx()
        self.alerting = Alerting(s, self.registry, self.store)
        self.alerting.start()  # replays what a crash left unprocessed, before new messages
        self.ingest.listeners.append(self.alerting.on_commit)
        self.client = MqttClient(
            host,
            port,
            s.mqtt.client_id,
            on_batch=self._on_batch,
            subscriptions=[(topics.subscription(s.mqtt.prefix), 1)],
            username=s.mqtt.username or None,
            password=s.mqtt.password or None,
            ssl=self._ssl_context(),
            keepalive=s.mqtt.keepalive_s,
            session_expiry=s.mqtt.session_expiry_s,
            coalesce_s=s.mqtt.read_coalesce_ms / 1000,
        )
        await self.client.start()
        if s.serial:
            self.fieldbus = Fieldbus(s.serial, self._publish, s.mqtt.prefix)
            await self.fieldbus.start()
        self._tasks += [
            asyncio.create_task(self._every(2.0, self._checkpoint), name="state-checkpoint"),
            asyncio.create_task(self._wal_checkpoints(), name="wal-checkpoint"),
            asyncio.create_task(self._every(5.0, self._liveness), name="liveness"),
            asyncio.create_task(self._every(RETENTION_EVERY_S, self._retention), name="retention"),
        ]
        _release_startup_memory()
        log.info(
            "gateway up: broker %s, store %s, %d registered devices",
            self.mqtt_url,
            s.store.path,
            len(self.registry.devices),
        )

    def _start_influx(self) -> None:
        from gateway.sinks.influx import InfluxSettings, InfluxSink
        from gateway.sinks.process import SinkProcess

        cfg = self.settings.influxdb
        assert cfg is not None and self.ingest is not None
        settings = InfluxSettings(
            url=cfg.url,
            api=cfg.api,
            token=cfg.token,
            org=cfg.org,
            bucket=cfg.bucket,
            database=cfg.database,
            username=cfg.username,
            password=cfg.password,
            timeout_s=cfg.timeout_s,
            verify_tls=cfg.verify_tls,
        )
        path, batch = self.settings.store.path, cfg.batch_size
        sink: InfluxSink | SinkProcess
        if cfg.own_process:
            sink = SinkProcess(settings, path, batch_size=batch, log_level=logging.root.level)
            self._tasks.append(
                asyncio.create_task(self._every(2.0, sink.supervise), name="sink-supervisor")
            )
        else:
            sink = InfluxSink(settings, path, batch_size=batch)
        sink.start()
        self.sink = sink
        self.ingest.listeners.append(lambda _accepted: sink.notify())

    def _ssl_context(self) -> ssl.SSLContext | None:
        m = self.settings.mqtt
        if not m.tls:
            return None
        ctx = ssl.create_default_context(cafile=m.ca_file or None)
        if m.cert_file:
            ctx.load_cert_chain(m.cert_file, m.key_file or None)
        return ctx

    def _on_batch(self, messages: Sequence[Received], token: Batch) -> None:
        if self.fieldbus is not None:  # locker commands for RS-485 lock boards
            self.fieldbus.on_messages(messages)
        assert self.ingest is not None
        self.ingest.on_batch(messages, token)

    async def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self.client is None:
            raise ConnectionError("MQTT client not started")
        await self.client.publish(topic, payload, qos=qos, retain=retain)

    def _ack(self, token: Batch, packet_ids: list[int]) -> None:
        if self.client is not None:
            self.client.ack(token, packet_ids)

    def add_listener(self, listener: Callable[[Sequence[Accepted]], None]) -> None:
        assert self.ingest is not None
        self.ingest.listeners.append(listener)

    async def _every(self, period: float, job: Callable[[], Awaitable[None] | None]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                pending = job()
                if pending is not None:
                    await pending
            except Exception:  # a task boundary: log and keep the loop alive
                log.exception("periodic job %s failed", job.__name__)

    async def _wal_checkpoints(self) -> None:
        """The WAL is copied back by a thread, never inside a commit on the loop."""
        while True:
            await asyncio.sleep(WAL_CHECKPOINT_EVERY_S)
            try:
                await asyncio.to_thread(wal_checkpoint, self.settings.store.path)
            except Exception:  # a task boundary: try again next time
                log.exception("WAL checkpoint failed")

    def _checkpoint(self) -> None:
        self.store.checkpoint_state()

    def _liveness(self) -> None:
        """A registered device silent for 3x its ``expect_every_s`` is offline."""
        now = self.now_ms()
        for device, every in self.expect_every.items():
            st = self.store.devices.get(device)
            if st is None or st.online is False:
                continue
            last = st.last_seen_ms or self.started_ms
            if now - last > OFFLINE_AFTER_PERIODS * every * 1000:
                self.store.mark_offline(st, now)
                log.info("device %s offline: silent for %.0f s", device, (now - last) / 1000)

    async def _retention(self) -> None:
        """Expire old rows a few thousand at a time, letting the loop run in between (a
        journal of 90 days holds hundreds of millions of rows)."""
        cutoff = self.now_ms() - int(self.settings.store.retention_days * 86400_000)
        keep_from = None
        if self.sink is not None:
            keep_from = self.store.load_cursor("influx")
        journal = dead = 0
        for rows, letters in self.store.expire_steps(cutoff, keep_after_id=keep_from):
            journal, dead = journal + rows, dead + letters
            await asyncio.sleep(0)
        if journal or dead:
            log.info(
                "retention: removed %d journal rows and %d dead letters older than %g days",
                journal,
                dead,
                self.settings.store.retention_days,
            )

    async def stop(self) -> None:
        if self.fieldbus is not None:
            await self.fieldbus.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ingest is not None and not await self.ingest.drain():
            log.error("stopping with messages not journaled: the broker will redeliver them")
        if self.alerting is not None:
            await self.alerting.stop()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.stop()
        if self.sink is not None:
            await asyncio.to_thread(self.sink.stop)
        with contextlib.suppress(Exception):
            self.store.checkpoint_state()
        self.store.close()
        self.audit.close()
        self.queries.close()
        if self.broker is not None:
            await self.broker.stop()
        log.info("gateway stopped")
