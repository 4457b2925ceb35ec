"""HTTP push from cameras and access controllers (CONTRACT.md 7.2), apart from HTTP itself.

The route hands over the adapter's name, the token and the body; this authenticates the
device by its ``ingest_token``, decodes the body with the adapter (large bodies off the event
loop), checks the identity the body claims against the binding's ``source``, keeps the
pictures, and queues the messages for the ingest's next group commit, answering only once
they are committed. Nothing here logs a token or a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from devices.adapters.base import Adapted, Adapter, Options
from devices.model import Rejected
from gateway.adapters.binding import AdapterDevices, Bindings
from gateway.adapters.gaps import EventLogGaps
from gateway.adapters.pictures import Pictures
from gateway.config import RegistryDevice
from gateway.ingest import Ingest
from gateway.store.journal import DeadLetter

DEFAULT_MAX_BODY = 4 * 1024 * 1024
"""An event and two or three snapshots (docs/adapters-http.md)."""
OFF_LOOP_BYTES = 256 * 1024
"""Bodies above this are decoded on a worker thread (a 4 MiB multipart takes ~0.16 s)."""
COMMIT_WAIT_S = 20.0
_IDENTITY_NOISE = re.compile(r"[\s:.-]")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def _json(status: int, **fields: Any) -> Answer:
    return Answer(status, "application/json", orjson.dumps(fields))


class PushRefused(Exception):
    """A push refused before its body is read (401, 404, 413)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class PushIngest:
    def __init__(
        self,
        adapters: Mapping[str, Adapter],
        options: Mapping[tuple[str, str], Options],
        bindings: Bindings,
        devices: AdapterDevices,
        ingest: Ingest,
        pictures: Pictures,
        now_ms: Callable[[], int],
        gaps: EventLogGaps | None = None,
    ) -> None:
        self.adapters = {n: a for n, a in adapters.items() if a.transport == "http"}
        self._options = options  # (adapter, community) -> the [[adapters]] entry's options
        self.bindings = bindings
        self.devices = devices
        self.ingest = ingest
        self.pictures = pictures
        self.now_ms = now_ms
        self.gaps = gaps
        self.answers: Counter[tuple[str, int]] = Counter()
        """(adapter, HTTP status) -> pushes answered."""

    def refuse(self, adapter: str, answer: Answer) -> PushRefused:
        self.answers[(adapter if adapter in self.adapters else "", answer.status)] += 1
        return PushRefused(answer)

    def authenticate(self, adapter: str, token: str) -> RegistryDevice:
        """The device this token belongs to, if it is bound to this adapter; else raises
        :class:`PushRefused` (404 for an adapter that does not push, 401 otherwise)."""
        if adapter not in self.adapters:
            raise self.refuse(adapter, _json(404, error=f"no HTTP adapter {adapter[:40]!r}"))
        device = self.bindings.by_token(token)
        if device is None or device.adapter != adapter:
            raise self.refuse(adapter, _json(401, error="unknown ingest token"))
        return device

    def options(self, adapter: str, community: str) -> Options:
        return self._options.get((adapter, community), {})

    def max_body_bytes(self, device: RegistryDevice) -> int:
        raw = self.options(device.adapter, device.community).get("max_body_bytes", "")
        return int(raw) if raw.isdigit() else DEFAULT_MAX_BODY

    def too_large(self, adapter: str, limit: int) -> PushRefused:
        return self.refuse(adapter, _json(413, error=f"body over {limit} bytes"))

    async def push(self, device: RegistryDevice, content_type: str, body: bytes) -> Answer:
        """Decode, check, keep and commit one push; the answer to send."""
        answer = await self._push(device, content_type, body)
        self.answers[(device.adapter, answer.status)] += 1
        return answer

    async def _push(self, device: RegistryDevice, content_type: str, body: bytes) -> Answer:
        name = device.adapter
        adapter = self.adapters[name]
        received = self.now_ms()
        options = self.options(name, device.community)
        try:
            if len(body) > OFF_LOOP_BYTES:
                adapted = await asyncio.to_thread(adapter.decode, content_type, body, options)
            else:
                adapted = adapter.decode(content_type, body, options)
        except Rejected as r:
            if r.reason == "too_large":
                return _json(413, rejected=r.reason, detail=r.detail)
            return await self._dead(device, received, r, body)
        if adapted.identity and device.source and not _same(adapted.identity, device.source):
            return _json(403, error="the body names another device than this token's")
        if adapted.ignored:
            self.ingest.adapter_ignored[(name, adapted.ignored)] += 1
            return self._reply(adapter, adapted, 0)
        names: list[str] = []
        if adapted.pictures:
            names = await asyncio.to_thread(self._save_pictures, device.community, adapted)
            adapted = _with_pictures(adapted, [self.pictures.url(n) for n in names])
        try:
            accepted = self.devices.accept(adapted, device.community, received, bound=device)
        except Rejected as r:
            if names:
                await asyncio.to_thread(self.pictures.remove, names)
            return await self._dead(device, received, r, body)
        waiter = self.ingest.submit(accepted, [])
        try:  # shielded: a request that times out still has its messages committed
            result = await asyncio.wait_for(asyncio.shield(waiter), COMMIT_WAIT_S)
        except TimeoutError:
            return _json(503, error="the journal is not taking writes; push again")
        del result
        if self.gaps is not None:  # events the controller kept while unheard
            self.gaps.observe(device, adapted, options)
        return self._reply(adapter, adapted, len(accepted))

    def _save_pictures(self, community: str, adapted: Adapted) -> list[str]:
        return [self.pictures.save(community, p) for p in adapted.pictures]

    async def _dead(
        self, device: RegistryDevice, received: int, r: Rejected, body: bytes
    ) -> Answer:
        letter = DeadLetter(
            received, f"ingest/{device.adapter}", r.reason, r.detail, body, device.adapter
        )
        with contextlib.suppress(TimeoutError):  # it stays queued; the answer is the same
            await asyncio.wait_for(asyncio.shield(self.ingest.submit([], [letter])), COMMIT_WAIT_S)
        return _json(400, rejected=r.reason, detail=r.detail[:200])

    @staticmethod
    def _reply(adapter: Adapter, adapted: Adapted, count: int) -> Answer:
        if adapter.reply is not None:
            content_type, body = adapter.reply(adapted)
            return Answer(200, content_type, body)
        return _json(200, accepted=count)

    def metrics(self) -> list[str]:
        out = [
            "# HELP courtyard_ingest_http_total HTTP pushes answered, by adapter and status",
            "# TYPE courtyard_ingest_http_total counter",
        ]
        for (adapter, status), n in sorted(self.answers.items()):
            out.append(f'courtyard_ingest_http_total{{adapter="{adapter}",status="{status}"}} {n}')
        out += [
            "# HELP courtyard_pictures_saved_total Pictures kept from HTTP pushes",
            "# TYPE courtyard_pictures_saved_total counter",
            f"courtyard_pictures_saved_total {self.pictures.saved_total}",
        ]
        if self.gaps is not None:
            for name, value in (
                ("searches", self.gaps.searches_total),
                ("filled", self.gaps.filled_total),
                ("failures", self.gaps.failures_total),
            ):
                metric = f"courtyard_event_log_{name}_total"
                out += [f"# TYPE {metric} counter", f"{metric} {value}"]
        return out


def _same(identity: str, source: str) -> bool:
    """Whether two spellings name one device: case, and the separators of a MAC address,
    do not count (``BC-5E-33-62-2A-5C`` is ``bc:5e:33:62:2a:5c``)."""
    a = _IDENTITY_NOISE.sub("", identity).casefold()
    return a == _IDENTITY_NOISE.sub("", source).casefold()


def _with_pictures(adapted: Adapted, urls: list[str]) -> Adapted:
    """Every event of the push refers to its pictures: ``picture`` (the first) and, when
    there are more, ``pictures``; the bytes stay out of the message."""
    refs: dict[str, Any] = {"picture": urls[0]}
    if len(urls) > 1:
        refs["pictures"] = urls
    messages = tuple(
        dataclasses.replace(m, attrs={**m.attrs, **refs}) if m.kind == "event" else m
        for m in adapted.messages
    )
    return dataclasses.replace(adapted, messages=messages, pictures=())
