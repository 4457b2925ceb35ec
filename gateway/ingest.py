"""Received MQTT messages -> topic check -> device profile -> journal (group commit) -> PUBACK.

The MQTT client hands over everything it parsed from one socket read in one call; this module
decodes it, and a group commit writes many messages in one transaction. Only after that commit
are the QoS 1 messages acknowledged to the broker, so a crash at any moment loses nothing that
was acknowledged: the broker redelivers the rest, and the journal's unique key absorbs the
duplicates. With ``[store] durability = "full"`` (the default) the commit returns once the WAL
is synced, so a power cut loses nothing acknowledged either; one sync per group commit, which a
backlog's commits of thousands of messages hardly notice (``ingest.durable_ratio_full_to_normal``,
``ingest.sync_us_per_commit_of_*`` in ``make bench``). A rejected message is written to the dead
letters *in the same commit*, then acknowledged like any other (no redelivery loop).

Two waits bound a group commit: ``commit_interval_s`` (5 ms) once an event, an ack or a
status is waiting (alerts and unlocks wait on those), or once ``commit_soon_at`` (1,000)
messages are (a commit that size gains nothing by waiting: the end of a backlog, a burst);
``telemetry_interval_s`` (50 ms) while fewer readings only are. Measured at a steady 2,000
readings/s from 1,000 meters: 5 ms commits held ~10 readings each, and each reading dirtied
its own page of the journal's unique index (the index is ordered by device), so the WAL took
~440 MB a minute; with 50 ms, ~20 MB. Per reading, a commit of 125 costs 14 us against 9 us
for a commit of 5,000 (``bench/ingest_cpu.py``). A backlog fills commits to ``commit_max``
either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from devices import topics
from devices.decode import decode
from devices.model import Decoded, Rejected
from devices.profiles import PROFILES
from gateway.adapters.binding import AdapterDevices
from gateway.adapters.router import Route, TopicRouter
from gateway.clock import Clock, Handle, SystemClock
from gateway.field_cap import MAX_FIELDS_PER_DEVICE, check_field_names
from gateway.store.journal import Accepted, DeadLetter, DeviceState, Store, WriteResult

log = logging.getLogger(__name__)

Acker = Callable[[Any, list[int]], None]
Waiter = asyncio.Future[WriteResult]
# accepted, dead letters, acks by connection, devices discovered, waiters: one group commit
_Batch = tuple[
    list[Accepted], list[DeadLetter], dict[Any, list[int]], list[DeviceState], list[Waiter]
]


class Message(Protocol):
    """What the ingest needs of a received message (the MQTT client's ``Received``)."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def packet_id(self) -> int: ...
    @property
    def received_at_ms(self) -> int: ...


class WriteObserver(Protocol):
    """Told of every group commit's outcome, and asked before each (the store's pressure)."""

    def may_commit(self) -> bool: ...
    def commit_failed(self, exc: BaseException) -> None: ...
    def commit_ok(self) -> None: ...


class Ingest:
    """Decode and journal received messages; acknowledge them after the commit.

    ``acker(token, packet_ids)`` is called with the ids of every QoS 1 message of a
    connection once they are committed. ``listeners`` are called after every commit with the
    accepted messages (sinks to wake up, rules to run); their exceptions are logged, never
    raised into the data path.
    """

    def __init__(
        self,
        store: Store,
        *,
        prefix: str,
        acker: Acker,
        commit_interval_s: float = 0.005,
        commit_max: int = 5000,
        telemetry_interval_s: float | None = None,
        commit_soon_at: int = 1000,
        max_payload_bytes: int = 65536,
        clock: Clock | None = None,
        router: TopicRouter | None = None,
        adapter_devices: AdapterDevices | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.acker = acker
        self.commit_interval_s = commit_interval_s
        self.telemetry_interval_s = (
            commit_interval_s if telemetry_interval_s is None else telemetry_interval_s
        )
        self.commit_max = commit_max
        self.commit_soon_at = commit_soon_at
        self.max_payload_bytes = max_payload_bytes
        self.listeners: list[Callable[[Sequence[Accepted]], None]] = []
        self.clock: Clock = clock or SystemClock()
        self.observer: WriteObserver | None = None
        self._accepted: list[Accepted] = []
        self._dead: list[DeadLetter] = []
        self._acks: dict[Any, list[int]] = {}
        self._timer: Handle | None = None
        self._due = 0.0  # the timer's deadline on the clock's monotonic time
        self._failing_since: float | None = None
        self._waiters: list[Waiter] = []
        self.received_total = 0
        self.ignored_total = 0
        # vendor ecosystems (CONTRACT.md 7): topics routed to their adapter, their devices
        self.router = router if router is not None and router.routes else None
        self.adapter_devices = adapter_devices
        self._native_head = prefix + "/"
        self.adapter_ignored: Counter[tuple[str, str]] = Counter()
        """(adapter, reason) -> topics of an ecosystem that carry no device message."""

    @property
    def pending(self) -> int:
        return len(self._accepted) + len(self._dead)

    def on_batch(self, messages: Sequence[Message], token: Any) -> None:
        """Take what the MQTT client parsed from one read (sync, on the event loop)."""
        store = self.store
        devices = store.devices
        prefix = self.prefix
        accepted = self._accepted
        acks = self._acks.get(token)
        if acks is None:
            acks = self._acks[token] = []
        urgent = False  # anything but readings: commit soon
        router = self.router
        native_head = self._native_head
        for m in messages:
            if m.qos:
                acks.append(m.packet_id)
            received = m.received_at_ms
            if router is not None and not m.topic.startswith(native_head):
                route = router.match(m.topic)
                if route is not None:
                    urgent = self._adapted(route, m, received) or urgent
                    continue
            try:
                t = topics.parse(m.topic, prefix)
                if t.message != "telemetry":
                    urgent = True
                    if t.message == "cmd":  # our own commands, echoed by the broker
                        self.ignored_total += 1
                        continue
                state = devices.get(t.device)
                if state is None:
                    decoded = self._decode(t, m.payload, received)
                    state = store.discover(t.device, t.community, t.device_class)
                    log.info(
                        "discovered device %s (%s in %s)", t.device, t.device_class, t.community
                    )
                elif state.device_class != t.device_class or state.community != t.community:
                    if t.device_class not in PROFILES:
                        raise Rejected("unknown_class", t.device_class[:64])
                    raise Rejected(
                        "registry_mismatch",
                        f"{t.device} is registered as {state.device_class} in "
                        f"{state.community}, not {t.device_class} in {t.community}",
                    )
                else:
                    decoded = self._decode(t, m.payload, received)
                if len(state.latest) + len(decoded.fields) > MAX_FIELDS_PER_DEVICE:
                    check_field_names(state, decoded)
                accepted.append(Accepted(state, decoded, received))
            except Rejected as r:
                self._dead.append(DeadLetter(received, m.topic, r.reason, r.detail, m.payload))
        self.received_total += len(messages)
        pending = self.pending
        if pending >= self.commit_max:
            self.flush()
        elif urgent or pending >= self.commit_soon_at:
            self._arm(self.commit_interval_s)
        else:
            self._arm(self.telemetry_interval_s)

    def _adapted(self, route: Route, m: Message, received: int) -> bool:
        """One message of an ecosystem: decoded by its adapter, bound, validated, queued for
        the commit (or dead-lettered with the adapter's name). True if it must commit soon."""
        adapter = route.adapter
        payload = m.payload
        try:
            if len(payload) > self.max_payload_bytes:
                raise Rejected("too_large", f"{len(payload)} > {self.max_payload_bytes} bytes")
            adapted = adapter.decode(m.topic, bytes(payload), route.options)
            if adapted.ignored:
                self.adapter_ignored[(adapter.name, adapted.ignored)] += 1
                return False
            devices = self.adapter_devices
            if devices is None:
                raise Rejected("no_binding", "adapters are not set up")
            accepted = devices.accept(
                adapted, route.community, received, default_class=route.device_class
            )
        except Rejected as r:
            self._dead.append(
                DeadLetter(received, m.topic, r.reason, r.detail, bytes(payload), adapter.name)
            )
            return True
        if not accepted:  # only commands or requests seen on the wire
            self.adapter_ignored[(adapter.name, "not_device_message")] += 1
            return False
        self._accepted.extend(accepted)
        return any(a.message.kind != "telemetry" for a in accepted)

    def submit(self, accepted: list[Accepted], dead: list[DeadLetter]) -> Waiter:
        """Queue messages that arrived another way than MQTT (an HTTP push) for the next group
        commit; the future resolves once they are committed (the HTTP answer waits for it)."""
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self._accepted.extend(accepted)
        self._dead.extend(dead)
        self._waiters.append(waiter)
        if self.pending >= self.commit_max:
            self.flush()
        else:
            self._arm(self.commit_interval_s)
        return waiter

    def _arm(self, delay: float) -> None:
        """Commit within ``delay`` seconds (or sooner, if already due sooner)."""
        due = self.clock.monotonic() + delay
        if self._timer is not None:
            if self._due <= due:
                return
            self._timer.cancel()
        self._due = due
        self._timer = self.clock.call_later(delay, self.flush)

    def _decode(self, t: topics.Topic, payload: bytes, received_ms: int) -> Decoded:
        return decode(t, payload, received_ms, max_bytes=self.max_payload_bytes)

    def flush(self) -> None:
        """Commit everything pending (inline, on the loop), then acknowledge it. On a store
        failure everything stays pending, unacknowledged, and is tried again shortly.

        Measured: the commit on a writer thread was no faster here (27-29k msg/s either
        way), and the rules' and audit's own transactions on the loop then waited for the
        journal's lock, up to a second at 5,000 msg/s."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if (
            not self._accepted
            and not self._dead
            and not any(self._acks.values())
            and not self._waiters
        ):
            return
        if self.observer is not None and not self.observer.may_commit():
            # held (no room and nothing left to shed): nothing committed, nothing acknowledged
            self._due = self.clock.monotonic() + 1.0
            self._timer = self.clock.call_later(1.0, self.flush)
            return
        batch = (
            self._accepted,
            self._dead,
            self._acks,
            self.store.take_discovered(),
            self._waiters,
        )
        self._accepted, self._dead, self._acks, self._waiters = [], [], {}, []
        try:
            result = self.store.commit(batch[0], batch[1], batch[3])
        except Exception as exc:  # a full disk, a locked file: never ack unwritten data
            self._failed(batch, exc)
            return
        self._committed(batch, result)

    def _failed(self, batch: _Batch, exc: BaseException) -> None:
        accepted, dead, acks, discovered, waiters = batch
        self._waiters[:0] = waiters
        if self.observer is not None:
            self.observer.commit_failed(exc)
        if self._failing_since is None:
            self._failing_since = self.clock.monotonic()
            log.error(
                "journal write failed, holding %d messages unacknowledged: %s",
                len(accepted) + len(dead),
                exc,
            )
        self._accepted[:0] = accepted
        self._dead[:0] = dead
        for token, ids in self._acks.items():
            acks.setdefault(token, []).extend(ids)
        self._acks = acks
        self.store.give_back_discovered(discovered)
        self._due = self.clock.monotonic() + 1.0
        self._timer = self.clock.call_later(1.0, self.flush)

    def _committed(self, batch: _Batch, result: WriteResult) -> None:
        accepted, _, acks, _, waiters = batch
        if self._failing_since is not None:
            log.warning(
                "journal writes recovered after %.1f s",
                self.clock.monotonic() - self._failing_since,
            )
            self._failing_since = None
        if self.observer is not None:
            self.observer.commit_ok()
        self.store.apply(accepted, result)
        for token, ids in acks.items():
            if ids:
                self.acker(token, ids)
        for waiter in waiters:
            if not waiter.done():  # its request may have gone (a client that hung up)
                waiter.set_result(result)
        for listener in self.listeners:
            try:
                listener(accepted)
            except Exception:
                log.exception("listener %r failed", listener)

    async def drain(self, timeout: float = 30.0) -> bool:  # noqa: ASYNC109
        """Commit (and acknowledge) everything pending; False if the store would not take it
        within ``timeout`` seconds. Call before closing the store."""
        deadline = self.clock.monotonic() + timeout
        while self.clock.monotonic() < deadline:
            self.flush()
            if not self.pending:
                return True
            await self.clock.sleep(0.05)  # failing: the retry timer is set
        return False
