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
import importlib.metadata
import logging
import sqlite3
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from devices import topics
from gateway.adapters.binding import AdapterDevices, Bindings
from gateway.adapters.commander import AdapterCommander, ecosystem_accounts
from gateway.adapters.gaps import EventLogGaps
from gateway.adapters.pictures import Pictures
from gateway.adapters.push import PushIngest
from gateway.adapters.router import TopicRouter, build_router
from gateway.adapters.table import ADAPTERS
from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.broker_config import Accounts, Ecosystem, write_accounts
from gateway.clock import Clock, SystemClock
from gateway.commands import CommandService
from gateway.config import Registry, Settings
from gateway.fieldbus.bridge import Fieldbus, registry_with_serial
from gateway.ingest import Acker, Ingest
from gateway.mqtt import Batch, Broker, EmbeddedBroker, MqttClient, OperatorBroker, Received
from gateway.mqtt.broker import free_port
from gateway.mqtt.codec import max_packet_size
from gateway.revocation import Revocations
from gateway.rules.service import Alerting
from gateway.sinks import Sink, build_sink
from gateway.store import runs
from gateway.store.backup import StoreLock
from gateway.store.journal import Accepted, Store
from gateway.store.pressure import CHECK_EVERY_S as PRESSURE_EVERY_S
from gateway.store.pressure import FULL, WRITE, StorePressure, classify
from gateway.store.queries import Queries
from gateway.store.retention import EVERY_S as RETENTION_EVERY_S
from gateway.store.retention import Retention
from gateway.store.schema import WAL_RESET_BYTES, wal_checkpoint

log = logging.getLogger(__name__)

WAL_CHECKPOINT_EVERY_S = 1.0
# After a clean stop with the embedded broker, the last wills its own stop fired arrive at the
# next start (queued in the gateway's session, and retained) within this long.
STOPPED_BROKER_WILLS_S = 30.0
STORE_RETRY_S = 2.0


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


def adapter_router(settings: Settings) -> TopicRouter:
    """The topic router of the configured MQTT ecosystems (``[[adapters]]``)."""
    return build_router(
        ((ADAPTERS[a.kind], a.options, a.community) for a in settings.adapters),
        native_prefix=settings.mqtt.prefix,
    )


def new_ingest(
    settings: Settings,
    store: Store,
    acker: Acker,
    clock: Clock | None = None,
    *,
    router: TopicRouter | None = None,
    adapter_devices: AdapterDevices | None = None,
) -> Ingest:
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
        clock=clock,
        router=router,
        adapter_devices=adapter_devices,
    )


class Gateway:
    """Every part of the running gateway, built here and only here: the store, the broker
    (embedded or the operator's), the MQTT client, the ingest, alerting, the sink, the
    field bus, commands and audit. ``start()`` and ``stop()`` only start and stop them."""

    def __init__(
        self, settings: Settings, registry: Registry, *, clock: Clock | None = None
    ) -> None:
        registry = registry_with_serial(registry, settings.serial)  # RS-485 buses, devices
        s = settings
        self.settings = settings
        self.registry = registry
        self.clock: Clock = clock or SystemClock()
        self.now_ms = self.clock.now_ms
        self.started_ms = self.now_ms()
        # held while running: `courtyard restore` refuses to replace the store under it
        self.store_lock = StoreLock(s.store.path)
        self.run_id = 0
        self.store = Store(
            s.store.path,
            now_ms=self.now_ms,
            durability=s.store.durability,
            startup_check=s.store.startup_check,
        )
        self.queries = Queries(s.store.path)
        self.audit = AuditLog(s.store.path, now_ms=self.now_ms, durability=s.store.durability)
        self.revocations = Revocations(s.store.path)  # signed-out sessions, residents
        # vendor ecosystems: their topics routed to adapters, their devices bound or discovered
        self.router = adapter_router(s)
        self.broker: Broker
        self.accounts: Accounts | None = None  # the embedded broker's (credentials.toml)
        username, password = s.mqtt.username or None, s.mqtt.password or None
        packet_limit = max_packet_size(s.store.max_payload_bytes)
        if s.mqtt.url is None:
            # the embedded Mosquitto, on a port chosen now, with the same accounts and ACLs
            # as broker-config: a device per account, the gateway on its own (so no local
            # program can pose as a device or ack a door's command), named after its client
            # id so that its session keeps the name it had
            folder = s.data_dir / "broker"
            self.accounts = write_accounts(
                registry,
                folder,
                prefix=s.mqtt.prefix,
                gateway_user=s.mqtt.client_id,
                ecosystems=[  # vendor ecosystems: an account each, on their own topics
                    Ecosystem(account, topics)
                    for account, topics in ecosystem_accounts(self.router.routes, registry.devices)
                ],
            )
            self.broker = EmbeddedBroker(
                folder,
                port=free_port(),
                password_file=self.accounts.passwd,
                acl_file=self.accounts.acl,
                max_packet_size=packet_limit,
            )
            username, password = self.accounts.gateway_user, self.accounts.gateway_password
        else:
            host, port = s.mqtt.host_port
            self.broker = OperatorBroker(s.mqtt.url, host, port)
        self.sink: Sink = build_sink(s.influxdb, s.store.path)
        self.bindings = Bindings(registry.devices)
        self.adapter_devices = AdapterDevices(
            self.store, self.bindings, max_payload_bytes=s.store.max_payload_bytes
        )
        self.ingest: Ingest = new_ingest(
            s,
            self.store,
            self._ack,
            self.clock,
            router=self.router,
            adapter_devices=self.adapter_devices,
        )
        self.pictures = Pictures(s.data_dir / "pictures")
        adapter_options = {(a.kind, a.community): a.options for a in s.adapters}
        self.push = PushIngest(
            ADAPTERS,
            adapter_options,
            self.bindings,
            self.adapter_devices,
            self.ingest,
            self.pictures,
            self.now_ms,
            EventLogGaps(self.adapter_devices, self.ingest, self.now_ms),
        )
        self.fieldbus = Fieldbus(s.serial, self._publish, s.mqtt.prefix)
        self.client = MqttClient(
            self.broker.host,
            int(self.broker.port or 0),
            s.mqtt.client_id,
            # locker commands for RS-485 lock boards pass through the field bus first
            on_batch=self._on_batch if self.fieldbus.command_topics else self.ingest.on_batch,
            subscriptions=[
                (topics.subscription(s.mqtt.prefix), 1),
                *((f, 1) for f in self.router.filters),
            ],
            username=username,
            password=password,
            ssl=self._ssl_context(),
            keepalive=s.mqtt.keepalive_s,
            session_expiry=s.mqtt.session_expiry_s,
            coalesce_s=s.mqtt.read_coalesce_ms / 1000,
            sleep=self.clock.sleep,
            clock_ms=self.now_ms,
            call_later=self.clock.call_later,
            maximum_packet_size=packet_limit,
        )
        self.authenticator = Authenticator(
            s.auth,
            [c.id for c in registry.communities],
            revoked_before=self.revocations.resident_revoked_before,
        )
        self.adapter_commands = AdapterCommander(self.client, adapter_options)
        self.commands = CommandService(
            s.commands,
            prefix=s.mqtt.prefix,
            devices=self.store.devices,
            registry=registry.by_id(),
            audit=self.audit,
            publisher=self.client,
            now_ms=self.now_ms,
            adapters=self.adapter_commands,
        )
        self.alerting = Alerting(s, registry, self.store, clock=self.clock)
        self.retention = Retention(
            self.store, s.store.retention_days, keep_cursor=self.sink.cursor, now_ms=self.now_ms
        )
        # every commit reaches: command confirmations, the sink, then the rules
        self.ingest.listeners += [
            self.commands.on_commit,
            self.adapter_commands.on_commit,
            lambda _accepted: self.sink.notify(),
            self.alerting.on_commit,
        ]
        self.commands.fault_listeners.append(self.alerting.command_fault)
        # the disk quota: nothing shed that a sink, the rules or the state checkpoint lacks
        self.pressure = StorePressure(
            self.store,
            max_bytes=s.store.max_bytes,
            min_free_bytes=s.store.min_free_bytes,
            downsample_every_ms=int(s.store.downsample_every_s * 1000),
            keep_cursors=[c for c in (self.sink.cursor, "rules", "state") if c],
            clock=self.clock,
        )
        self.ingest.observer = self.pressure
        # the WAL counts against the quota: start it over well before it could fill it
        self._wal_reset_above = (
            min(WAL_RESET_BYTES, s.store.max_bytes // 8) if s.store.max_bytes else WAL_RESET_BYTES
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def mqtt_url(self) -> str:
        return self.broker.url

    async def start(self) -> None:
        s = self.settings
        Path(s.store.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            await self._open_store()  # takes the store's lock first
            previous = self._begin_run()
        except BaseException:
            self.store_lock.release()
            raise
        self.revocations.open()
        await self.broker.start()
        self.sink.start()
        if self.accounts is not None and previous is not None and previous.stopped_ms:
            # the embedded broker stopped with the gateway: the wills it fired are ours
            until = self.now_ms() + int(STOPPED_BROKER_WILLS_S * 1000)
            self.alerting.engine.doubt_offline_until(until)
        self.alerting.start()  # replays what a crash left unprocessed, before new messages
        if self.store.replaced is not None:
            self.alerting.store_replaced(*self.store.replaced)
        self.pressure.alert = self.alerting.store_health  # alerts can be written from now on
        self.pressure.start()
        await self.pressure.check()  # no room at start: hold before the first message
        await self.client.start()
        if self.client.anonymous:
            log.warning(
                "connected to the broker %s without an account, so it accepts anonymous "
                "clients: anyone who reaches it can pose as any device, fake a door's ack or "
                "an alarm; give it per-device accounts (courtyard broker-config, "
                "docs/security.md)",
                self.mqtt_url,
            )
        await self.fieldbus.start()
        self._tasks += [
            asyncio.create_task(self._every(2.0, self._checkpoint), name="state-checkpoint"),
            asyncio.create_task(self._wal_checkpoints(), name="wal-checkpoint"),
            asyncio.create_task(
                self._every(PRESSURE_EVERY_S, self.pressure.check), name="store-pressure"
            ),
            asyncio.create_task(
                self._every(RETENTION_EVERY_S, self.retention.run), name="retention"
            ),
            asyncio.create_task(
                self._every(RETENTION_EVERY_S, self._expire_pictures), name="picture-retention"
            ),
        ]
        if self.sink.supervised:
            self._tasks.append(
                asyncio.create_task(self._every(2.0, self.sink.supervise), name="sink-supervisor")
            )
        _release_startup_memory()
        log.info(
            "gateway up: broker %s, store %s, %d registered devices",
            self.mqtt_url,
            s.store.path,
            len(self.registry.devices),
        )

    def _begin_run(self) -> runs.Run | None:
        try:
            version = importlib.metadata.version("courtyard")
        except importlib.metadata.PackageNotFoundError:
            version = ""
        self.run_id, previous = runs.begin(self.settings.store.path, self.now_ms(), version)
        if previous is not None and previous.stopped_ms is None:
            started = datetime.fromtimestamp(previous.started_ms / 1000, UTC)
            log.warning(
                "the previous run (started %s) did not stop cleanly: a crash, a kill or a "
                "power cut; devices still silent after the start-up grace will be alerted",
                started.isoformat(timespec="seconds"),
            )
        return previous

    async def _open_store(self) -> None:
        """Open the store, waiting for it while its filesystem is full, read-only or failing:
        exiting would only make a crash loop of the supervisor's restarts, and the broker
        keeps the messages meanwhile. Anything else is a real error and stops start-up."""
        while True:
            try:
                if not self.store_lock.held:
                    self.store_lock.acquire()
                self.store.open()
                self.audit.open()
                self.store.register(
                    (d.id, d.community, d.device_class, d.building) for d in self.registry.devices
                )
                break
            except (sqlite3.Error, OSError) as exc:
                self.store.close()
                with contextlib.suppress(sqlite3.Error, OSError):
                    self.audit.close()
                if classify(exc, self.settings.store.path) == WRITE:
                    raise
                if not self.pressure.write_failing:
                    log.error(
                        "store %s cannot be opened for writing, trying again every %g s",
                        self.settings.store.path,
                        STORE_RETRY_S,
                    )
                self.pressure.commit_failed(exc)
                await self.clock.sleep(STORE_RETRY_S)
        if self.pressure.write_failing:
            self.pressure.commit_ok()

    def _ssl_context(self) -> ssl.SSLContext | None:
        m = self.settings.mqtt
        if not m.tls:
            return None
        ctx = ssl.create_default_context(cafile=m.ca_file or None)
        if m.cert_file:
            ctx.load_cert_chain(m.cert_file, m.key_file or None)
        return ctx

    def _on_batch(self, messages: Sequence[Received], token: Batch) -> None:
        self.fieldbus.on_messages(messages)
        self.ingest.on_batch(messages, token)

    async def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        await self.client.publish(topic, payload, qos=qos, retain=retain)

    def _ack(self, token: Batch, packet_ids: list[int]) -> None:
        self.client.ack(token, packet_ids)

    def add_listener(self, listener: Callable[[Sequence[Accepted]], None]) -> None:
        self.ingest.listeners.append(listener)

    async def _every(self, period: float, job: Callable[[], Awaitable[object] | None]) -> None:
        while True:
            await self.clock.sleep(period)
            try:
                pending = job()
                if pending is not None:
                    await pending
            except Exception:  # a task boundary: log and keep the loop alive
                log.exception("periodic job %s failed", job.__name__)

    async def _wal_checkpoints(self) -> None:
        """The WAL is copied back by a thread, never inside a commit on the loop."""
        failing = False
        while True:
            await self.clock.sleep(WAL_CHECKPOINT_EVERY_S)
            reset_above = self._wal_reset_above
            usage = self.pressure.usage
            if usage is not None:  # on a small disk, the WAL must not be what fills it
                reset_above = min(reset_above, max(1 << 20, usage.free_disk_bytes // 4))
            if FULL in self.pressure.reasons:
                reset_above = 0  # the WAL's own blocks may be what the disk lacks
            try:
                await asyncio.to_thread(
                    wal_checkpoint, self.settings.store.path, reset_above=reset_above
                )
                failing = False
            except (sqlite3.Error, OSError) as exc:
                if classify(exc) == WRITE:
                    log.exception("WAL checkpoint failed")
                elif not failing:  # a full disk, an I/O error: the pressure reports those
                    log.warning("WAL checkpoint failed (again every second, quietly): %s", exc)
                failing = True
            except Exception:  # a task boundary: try again next time
                log.exception("WAL checkpoint failed")

    async def _expire_pictures(self) -> None:
        """Pictures go with the journal rows that refer to them (the store's retention)."""
        days = self.settings.store.retention_days
        await asyncio.to_thread(self.pictures.expire, self.now_ms() / 1000, days=days)

    def _checkpoint(self) -> None:
        if self.pressure.write_failing:  # logged once by the pressure, not every 2 s
            return
        try:
            self.store.checkpoint_state()
        except (sqlite3.Error, OSError) as exc:
            if classify(exc) == WRITE:
                raise
            log.warning("state checkpoint failed: %s", exc)  # again in 2 s

    async def stop(self) -> None:
        await self.fieldbus.stop()
        if self.push.gaps is not None:
            await self.push.gaps.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not await self.ingest.drain():
            log.error("stopping with messages not journaled: the broker will redeliver them")
        await self.alerting.stop()
        with contextlib.suppress(Exception):
            await self.client.stop()
        await asyncio.to_thread(self.sink.stop)
        with contextlib.suppress(Exception):
            self.store.checkpoint_state()
        self.store.close()
        self.audit.close()
        self.revocations.close()
        self.queries.close()
        await self.broker.stop()
        if self.run_id:
            runs.end(self.settings.store.path, self.run_id, self.now_ms())
        self.store_lock.release()
        log.info("gateway stopped")
