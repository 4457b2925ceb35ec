"""Received MQTT messages -> topic check -> device profile -> journal (group commit) -> PUBACK.

The MQTT client hands over everything it parsed from one socket read in one call; this module
decodes it, and a group commit writes many messages in one transaction. Only after that commit
are the QoS 1 messages acknowledged to the broker, so a crash at any moment loses nothing that
was acknowledged: the broker redelivers the rest, and the journal's unique key absorbs the
duplicates. A rejected message is written to the dead letters *in the same commit*, then
acknowledged like any other (no redelivery loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from devices.decode import decode
from devices.model import Decoded, Rejected
from devices.profiles import PROFILES
from gateway.mqtt import topics
from gateway.store.journal import Accepted, DeadLetter, Store

log = logging.getLogger(__name__)

Acker = Callable[[Any, list[int]], None]


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
        max_payload_bytes: int = 65536,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.acker = acker
        self.commit_interval_s = commit_interval_s
        self.commit_max = commit_max
        self.max_payload_bytes = max_payload_bytes
        self.listeners: list[Callable[[Sequence[Accepted]], None]] = []
        self._loop = loop
        self._accepted: list[Accepted] = []
        self._dead: list[DeadLetter] = []
        self._acks: dict[Any, list[int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._failing_since: float | None = None
        self.received_total = 0
        self.ignored_total = 0

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
        for m in messages:
            if m.qos:
                acks.append(m.packet_id)
            received = m.received_at_ms
            try:
                t = topics.parse(m.topic, prefix)
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
                accepted.append(Accepted(state, decoded, received))
            except Rejected as r:
                self._dead.append(DeadLetter(received, m.topic, r.reason, r.detail, m.payload))
        self.received_total += len(messages)
        if self.pending >= self.commit_max:
            self.flush()
        elif self._timer is None:
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_later(self.commit_interval_s, self.flush)

    def _decode(self, t: topics.Topic, payload: bytes, received_ms: int) -> Decoded:
        return decode(
            t.device_class,
            t.message,
            t.device,
            payload,
            received_ms,
            max_bytes=self.max_payload_bytes,
        )

    def flush(self) -> None:
        """Commit everything pending, then acknowledge it. On a store failure keep it all
        (unacknowledged) and try again shortly."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._accepted and not self._dead and not any(self._acks.values()):
            return
        accepted, dead, acks = self._accepted, self._dead, self._acks
        try:
            self.store.write(accepted, dead)
        except Exception as exc:  # a full disk, a locked file: retry, never ack unwritten data
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.error(
                    "journal write failed, holding %d messages unacknowledged: %s",
                    len(accepted) + len(dead),
                    exc,
                )
            loop = self._loop or asyncio.get_running_loop()
            self._timer = loop.call_later(1.0, self.flush)
            return
        if self._failing_since is not None:
            log.warning(
                "journal writes recovered after %.1f s", time.monotonic() - self._failing_since
            )
            self._failing_since = None
        self._accepted, self._dead, self._acks = [], [], {}
        for token, ids in acks.items():
            if ids:
                self.acker(token, ids)
        for listener in self.listeners:
            try:
                listener(accepted)
            except Exception:
                log.exception("listener %r failed", listener)
