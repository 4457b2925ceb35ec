"""Filling gaps in an access controller's numbered events from its own event log.

A Hikvision controller numbers its events (``serialNo``) and keeps them. When a push carries
serial 261 after 257, events 258-260 happened while the gateway could not hear it: if the
binding gives the controller's ``isapi_url``, ``username`` and ``password``, the missing
serials are searched in its log (``POST /ISAPI/AccessControl/AcsEvent``, digest auth, page by
page) and go through the same binding, validation and group commit as pushes. A found event
has the same ``ts`` and ``seq`` as its push would have had, so an event that arrives both ways
is stored once. One search at a time per controller; a failed search is logged and counted,
and the next gap asks again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import httpx

from devices.adapters import hikvision
from devices.adapters.base import Adapted, Options
from devices.model import Rejected
from gateway.adapters.binding import AdapterDevices
from gateway.config import RegistryDevice
from gateway.ingest import Ingest

log = logging.getLogger(__name__)

MAX_PAGES = 100  # 3,000 events: the widest gap hikvision.serial_gap asks for


class EventLogGaps:
    """Watches the serial numbers of pushes and fills their gaps (the ``hikvision``
    adapter's controllers: the one ecosystem here whose devices keep a searchable log)."""

    adapter = hikvision.NAME

    def __init__(
        self,
        devices: AdapterDevices,
        ingest: Ingest,
        now_ms: Callable[[], int],
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.devices = devices
        self.ingest = ingest
        self.now_ms = now_ms
        self.timeout_s = timeout_s
        self._last: dict[str, int] = {}  # device -> highest serial seen since start
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.searches_total = 0
        self.filled_total = 0
        self.failures_total = 0

    def observe(self, device: RegistryDevice, adapted: Adapted, options: Options) -> None:
        """After a push of ``device`` was committed: search what its serials skipped."""
        serials = [m.seq for m in adapted.messages if m.seq is not None]
        if device.adapter != self.adapter or not serials:
            return
        last = self._last.get(device.id)
        gap = hikvision.serial_gap(last, min(serials))
        self._last[device.id] = max(serials) if last is None else max(last, *serials)
        searchable = device.isapi_url and device.username and device.password
        if gap is None or not searchable or device.id in self._tasks:
            return
        task = asyncio.create_task(self._fill(device, gap, options), name=f"gap-{device.id}")
        self._tasks[device.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(device.id, None))

    async def _fill(self, device: RegistryDevice, gap: tuple[int, int], options: Options) -> None:
        self.searches_total += 1
        search_id = uuid.uuid4().hex
        position = found = 0
        try:
            auth = httpx.DigestAuth(device.username, device.password)
            async with httpx.AsyncClient(timeout=self.timeout_s, auth=auth) as client:
                for _ in range(MAX_PAGES):
                    path, content_type, body = hikvision.search_request(
                        search_id, position=position, first_serial=gap[0], last_serial=gap[1]
                    )
                    answer = await client.post(
                        device.isapi_url + path,
                        content=body,
                        headers={"Content-Type": content_type},
                    )
                    answer.raise_for_status()
                    page = hikvision.parse_search(answer.content, options)
                    if page.messages:
                        adapted = Adapted(
                            self.adapter, device.source, device.device_class, page.messages
                        )
                        accepted = self.devices.accept(
                            adapted, device.community, self.now_ms(), bound=device
                        )
                        await self.ingest.submit(accepted, [])
                        found += len(page.messages)
                    position += len(page.messages)
                    if not page.more or not page.messages:
                        break
        except (httpx.HTTPError, Rejected) as exc:
            self.failures_total += 1
            log.warning(
                "%s: searching its event log for serials %d-%d failed: %s",
                device.id,
                gap[0],
                gap[1],
                type(exc).__name__ if isinstance(exc, httpx.HTTPError) else exc,
            )
            return
        self.filled_total += found
        log.info("%s: %d events of serials %d-%d from its event log", device.id, found, *gap)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
