"""Sending commands to adapter devices and waiting for their confirmation (CONTRACT.md 7.4).

The command pipeline (``gateway.commands``) authorises, rate-limits and audits a command as
for any device; for a device bound to an adapter with ``commands = true`` it hands the
command here instead of signing it. The plan (``devices.adapters.commands``) is sent as an
MQTT publish on the gateway's connection, or as an HTTP request to the device with digest
auth (credentials from the registry, never logged); it is confirmed by the device's next
state carrying the plan's reading (journaled like any message) or by the HTTP answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from devices.adapters.base import Options
from devices.adapters.commands import CommandPlan, Target, confirmed_by_answer, plan
from devices.model import Rejected, Value
from gateway.adapters.router import Route
from gateway.audit import Outcome
from gateway.config import RegistryDevice
from gateway.mqtt import MqttError
from gateway.store.journal import Accepted

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 10.0,  # noqa: ASYNC109 - the client's own deadline
    ) -> None: ...


@dataclass(slots=True)
class _Waiting:
    device: str
    field: str
    value: Value
    future: asyncio.Future[None]


class AdapterCommander:
    """Executes command plans; ``on_commit`` (an ingest listener) confirms MQTT ones."""

    def __init__(self, publisher: Publisher, options: Mapping[tuple[str, str], Options]) -> None:
        self._publisher = publisher
        self._options = options
        self._waiting: list[_Waiting] = []

    def plan(self, reg: RegistryDevice, action: str, args: Mapping[str, Any]) -> CommandPlan:
        """The plan for this device, or ``Rejected`` (``not_commandable``)."""
        target = Target(
            source=reg.source,
            door=reg.door or 1,
            relay=reg.device_class != "access",
            isapi_url=reg.isapi_url,
        )
        return plan(
            reg.adapter, target, action, args, self._options.get((reg.adapter, reg.community), {})
        )

    async def execute(
        self, reg: RegistryDevice, command: CommandPlan, timeout_s: float
    ) -> tuple[Outcome, str]:
        """Send one plan; (audit outcome, reason)."""
        if command.transport == "http":
            return await self._http(reg, command, timeout_s)
        return await self._mqtt(reg, command, timeout_s)

    async def _mqtt(
        self, reg: RegistryDevice, command: CommandPlan, timeout_s: float
    ) -> tuple[Outcome, str]:
        waiting: _Waiting | None = None
        if command.confirm is not None:
            field, value = command.confirm
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiting = _Waiting(reg.id, field, value, future)
            self._waiting.append(waiting)
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    await self._publisher.publish(
                        command.topic, command.payload, qos=1, retain=False, timeout=timeout_s
                    )
                except MqttError as exc:
                    return Outcome.FAILED, f"not delivered to the broker: {type(exc).__name__}"
                if waiting is not None:
                    await waiting.future
        except TimeoutError:
            return Outcome.TIMEOUT, "the device did not report the new state in time"
        finally:
            if waiting is not None:
                self._waiting.remove(waiting)
        return Outcome.OK, ""

    async def _http(
        self, reg: RegistryDevice, command: CommandPlan, timeout_s: float
    ) -> tuple[Outcome, str]:
        auth = httpx.DigestAuth(reg.username, reg.password)
        try:
            async with httpx.AsyncClient(timeout=timeout_s, auth=auth) as client:
                answer = await client.request(
                    command.method,
                    command.url,
                    content=command.body,
                    headers={"Content-Type": command.content_type},
                )
        except httpx.TimeoutException:
            return Outcome.TIMEOUT, "the device did not answer in time"
        except httpx.HTTPError as exc:
            return Outcome.FAILED, f"not delivered: {type(exc).__name__}"
        if answer.status_code == 401:
            return Outcome.FAILED, "the device refused the credentials"
        ok, why = confirmed_by_answer(
            answer.status_code, answer.headers.get("content-type", ""), answer.content
        )
        return (Outcome.OK, "") if ok else (Outcome.REFUSED, why)

    def on_commit(self, accepted: Sequence[Accepted]) -> None:
        """Ingest listener: a device's new state confirms the commands waiting for it."""
        if not self._waiting:
            return
        for item in accepted:
            m = item.message
            if m.kind != "telemetry":
                continue
            for w in self._waiting:
                confirms = w.device == item.device.device and m.fields.get(w.field) == w.value
                if confirms and not w.future.done():
                    w.future.set_result(None)


def ecosystem_accounts(
    routes: Sequence[Route], devices: Sequence[RegistryDevice]
) -> list[tuple[str, tuple[str, ...]]]:
    """(broker account, topics) per MQTT ecosystem (``[[adapters]]`` entry): the account is
    ``adapter-{adapter}-{community}`` (``-2``, ``-3`` for more entries of that adapter in that
    community); its topics are the adapter's filters and the command topics of its
    commandable devices (the broker's ACLs let the gateway write those, the ecosystem read
    them)."""
    out = []
    seen: dict[str, int] = {}
    for route in routes:
        commands = []
        for d in devices:
            if d.adapter == route.name and d.community == route.community and d.commands:
                target = Target(d.source, d.door or 1, d.device_class != "access", d.isapi_url)
                action = "unlock" if d.device_class == "access" else "open_barrier"
                with contextlib.suppress(Rejected):
                    topic = plan(d.adapter, target, action, {}, route.options).topic
                    if topic:
                        commands.append(topic)
        account = f"adapter-{route.name}-{route.community}"
        seen[account] = seen.get(account, 0) + 1
        if seen[account] > 1:
            account += f"-{seen[account]}"
        out.append((account, tuple(dict.fromkeys((*route.filters, *commands)))))
    return out
