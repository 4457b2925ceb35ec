"""Adapter messages bound to devices, and validated like native ones.

A message's ``source`` (the ecosystem's identity of the device) finds the registry device
bound to it; a source no device binds becomes a *discovered* device of that adapter, with an
id derived from the source, never dropped. Each normalized message is then written as the
native payload it stands for and decoded by :func:`devices.decode.decode`, so an adapter's
output meets exactly the checks a native device's does (the class's fields and events, their
types, timestamps, ``seq``), and a bad one is dead-lettered the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import orjson

from devices.adapters.base import Adapted
from devices.decode import decode
from devices.model import Rejected
from devices.profiles import PROFILES
from devices.topics import Topic
from gateway.config import RegistryDevice
from gateway.field_cap import MAX_FIELDS_PER_DEVICE, check_field_names
from gateway.store.journal import Accepted, DeviceState, Store

JOURNALED = ("telemetry", "event", "status")
"""Adapted message kinds that are device messages; ``command`` (a command seen on the wire)
and ``request`` (a master's serial request) are not."""

_SLUG_DROP = re.compile(r"[^a-z0-9_-]+")


def discovered_id(adapter: str, source: str) -> str:
    """The id of an unbound source's device: ``{adapter}-{source}`` when the source is already
    a valid id part, else its readable part and a hash of the whole (so two sources never
    share an id: ``Kitchen Door`` and ``kitchen/door`` differ)."""
    slug = _SLUG_DROP.sub("-", source.lower()).strip("-_")
    plain = f"{adapter}-{slug}"
    if slug == source and len(plain) <= 64:
        return plain
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    return f"{adapter}-{slug[: 63 - len(adapter) - 12]}-{digest}".replace("--", "-")


class Bindings:
    """The registry's adapter bindings: by (adapter, source) and by ingest token."""

    def __init__(self, devices: Iterable[RegistryDevice]) -> None:
        self._by_source: dict[tuple[str, str], RegistryDevice] = {}
        self._by_token: dict[bytes, RegistryDevice] = {}
        for d in devices:
            if d.adapter and d.source:
                self._by_source[(d.adapter, d.source.casefold())] = d
            if d.ingest_token:
                self._by_token[_token_key(d.ingest_token)] = d
        self.discovered: dict[str, tuple[str, str]] = {}
        """Discovered devices heard since start: id -> (adapter, source)."""

    def bound(self, adapter: str, source: str) -> RegistryDevice | None:
        return self._by_source.get((adapter, source.casefold()))

    def by_token(self, token: str) -> RegistryDevice | None:
        """The device whose ``ingest_token`` this is. Looked up by its SHA-256: a dict lookup
        of the digest reveals nothing of the token through timing."""
        if not token or len(token) > 512:
            return None
        return self._by_token.get(_token_key(token))


def _token_key(token: str) -> bytes:
    return hashlib.sha256(token.strip().lower().encode()).digest()


class AdapterDevices:
    """Turns an :class:`Adapted` into journal-ready :class:`Accepted` messages."""

    def __init__(self, store: Store, bindings: Bindings, *, max_payload_bytes: int) -> None:
        self.store = store
        self.bindings = bindings
        self.max_payload_bytes = max_payload_bytes
        # (adapter, source, community) -> its device, once resolved: a device sends thousands of
        # messages, and resolving costs a case fold, a hash and a regex (cleared past 200,000)
        self._resolved: dict[tuple[str, str, str], DeviceState] = {}

    def device(
        self,
        adapted: Adapted,
        community: str,
        bound: RegistryDevice | None = None,
        default_class: str = "",
    ) -> DeviceState:
        """The bound device's state, or the discovered device of this source (recorded with
        the next commit, of the adapter's class, else ``default_class``). Raises ``Rejected``
        when the source is empty and nothing binds it, or when no class is known."""
        key = (adapted.adapter, adapted.source, community)
        if bound is None:
            cached = self._resolved.get(key)
            if cached is not None and self.store.devices.get(cached.device) is cached:
                return cached
            state = self._resolve(adapted, community, default_class)
            if len(self._resolved) >= 200_000:
                self._resolved.clear()
            self._resolved[key] = state
            return state
        return self._resolve(adapted, community, default_class, bound)

    def _resolve(
        self,
        adapted: Adapted,
        community: str,
        default_class: str,
        bound: RegistryDevice | None = None,
    ) -> DeviceState:
        if bound is None and adapted.source:
            bound = self.bindings.bound(adapted.adapter, adapted.source)
        devices = self.store.devices
        if bound is not None:
            state = devices.get(bound.id)
            if state is not None:
                return state
            return self.store.discover(bound.id, bound.community, bound.device_class)
        if not adapted.source:
            raise Rejected("no_source", f"{adapted.adapter}: the message names no device")
        device_id = discovered_id(adapted.adapter, adapted.source)
        state = devices.get(device_id)
        if state is None:
            device_class = adapted.device_class or default_class
            if not device_class:  # an availability, a bare uplink: kept, to be classified
                raise Rejected(
                    "unclassified",
                    f"{adapted.adapter} source {adapted.source[:80]!r} is bound to no device"
                    " and this message does not tell its class: bind it, or set the"
                    " [[adapters]] entry's device_class",
                )
            if device_class not in PROFILES:
                raise Rejected("unknown_class", device_class[:64])
            state = self.store.discover(device_id, community, device_class)
        self.bindings.discovered.setdefault(device_id, (adapted.adapter, adapted.source))
        return state

    def accept(
        self,
        adapted: Adapted,
        community: str,
        received_ms: int,
        bound: RegistryDevice | None = None,
        default_class: str = "",
    ) -> list[Accepted]:
        """Every device message of ``adapted``, decoded like native ones; ``Rejected`` if
        any fails (the whole message is dead-lettered, none of it journaled)."""
        bodies = native_payloads(adapted)
        if not bodies:
            return []
        state = self.device(adapted, community, bound, default_class)
        out = []
        for kind, body in bodies:
            topic = Topic(state.community, state.device_class, state.device, kind)
            decoded = decode(topic, body, received_ms, max_bytes=self.max_payload_bytes)
            if len(state.latest) + len(decoded.fields) > MAX_FIELDS_PER_DEVICE:
                check_field_names(state, decoded)
            out.append(Accepted(state, decoded, received_ms))
        return out


def native_payloads(adapted: Adapted) -> list[tuple[str, bytes]]:
    """The native payloads (message kind, JSON) the adapted messages stand for.

    Two messages of one kind without a ``seq`` and with the same time would share the
    journal's unique key and the second would be taken for a redelivery: such a message gets
    its position in the adapter message as ``seq`` (only when it has no time of its own, so
    a redelivered message with a device time keeps its key)."""
    out: list[tuple[str, bytes]] = []
    keys: set[tuple[str, int | None, int | None]] = set()
    for i, m in enumerate(adapted.messages):
        if m.kind not in JOURNALED:
            continue
        seq = m.seq
        key = (m.kind, m.ts_ms, seq)
        if key in keys and seq is None and m.ts_ms is None:
            seq = i
        keys.add((m.kind, m.ts_ms, seq))
        body: dict[str, Any]
        if m.kind == "telemetry":
            body = dict(m.readings)
        elif m.kind == "event":
            body = {**m.attrs, "event": m.event}
        else:
            body = {"state": m.state}
        if m.ts_ms is not None:
            body["ts"] = m.ts_ms
        if seq is not None:
            body["seq"] = seq
        out.append((m.kind, orjson.dumps(body)))
    return out
