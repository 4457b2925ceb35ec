"""The field-bus bridge: every ``[[serial]]`` bus with its scheduler, one outbox to MQTT, the
locker command intake, the registry entries and the metrics.

Readings go out on the native topics through the gateway's MQTT client, so the journal, the
InfluxDB sink and the rules see serial devices exactly like MQTT-native ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from devices.model import GATEWAY_STOPPED
from gateway.config import ConfigError, Registry, RegistryDevice
from gateway.fieldbus.link import SerialLink
from gateway.fieldbus.outbox import Outbox, Publish
from gateway.fieldbus.scheduler import BusScheduler
from gateway.fieldbus.settings import SerialBus

log = logging.getLogger(__name__)


def registry_with_serial(registry: Registry, buses: Sequence[SerialBus]) -> Registry:
    """The registry plus every bus (a device of its carried class) and its devices, whose
    ``parent`` is the bus. No ``expect_every_s``: the bridge itself reports each device's
    status (a long cycle on a slow bus must not read as silence).
    Raises :class:`ConfigError` on an id clash or an unknown community."""
    if not buses:
        return registry
    extra: list[RegistryDevice] = []
    for bus in buses:
        extra.append(
            RegistryDevice.model_validate(
                {
                    "id": bus.id,
                    "community": bus.community,
                    "class": bus.device_class,
                    "building": bus.building,
                    "name": f"RS-485 bus {bus.port}",
                }
            )
        )
        extra.extend(
            RegistryDevice.model_validate(
                {
                    "id": d.id,
                    "community": bus.community,
                    "class": d.device_class,
                    "building": d.building,
                    "secret": d.secret,
                    "parent": bus.id,
                    "name": d.name or d.model,
                    "command_rule": 2,  # the bridge is their firmware (fieldbus.verify)
                }
            )
            for d in bus.devices
        )
    try:
        return Registry(
            communities=registry.communities,
            buildings=registry.buildings,
            devices=[*registry.devices, *extra],
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"[[serial]] devices do not fit the registry: {exc}") from None


class Fieldbus:
    def __init__(
        self,
        buses: Sequence[SerialBus],
        publish: Publish,
        prefix: str,
        *,
        link_factory: Callable[[SerialBus], SerialLink] | None = None,
    ) -> None:
        self.outbox = Outbox(publish, prefix)
        make = link_factory or (
            lambda b: SerialLink(b.port, baudrate=b.baudrate, parity=b.parity, stopbits=b.stopbits)
        )
        self.schedulers = [BusScheduler(b, make(b), self.outbox) for b in buses]
        self._cmd_topics: dict[str, tuple[BusScheduler, str]] = {}
        for s in self.schedulers:
            for dev_id in s.lockers.devices:
                dev = s.lockers.devices[dev_id]
                self._cmd_topics[s.topic(dev, "cmd")] = (s, dev_id)
        self._tasks: list[asyncio.Task[None]] = []
        self._intake: set[asyncio.Task[None]] = set()

    @property
    def command_topics(self) -> list[str]:
        return sorted(self._cmd_topics)

    async def start(self) -> None:
        self.outbox.start()
        self._tasks = [
            asyncio.create_task(self._supervise(s), name=f"fieldbus-{s.bus.id}")
            for s in self.schedulers
        ]

    async def _supervise(self, s: BusScheduler) -> None:
        while True:
            try:
                await s.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # a task boundary: a bug must not end the bus for good
                log.exception("bus %s: scheduler failed, restarting in 5 s", s.bus.id)
                s.link.close()
                await asyncio.sleep(5)

    async def stop(self) -> None:
        for t in [*self._tasks, *self._intake]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._intake, return_exceptions=True)
        for s in self.schedulers:
            s.link.close()
            # retained: nobody polls this bus any more. Said as a planned stop, so that the
            # rules mark it offline without an alert, now or when the next start reads it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.set_bus_state(False, GATEWAY_STOPPED), 1.0)
        with contextlib.suppress(Exception):
            await self.outbox.stop()

    def on_messages(self, messages: Iterable[Any]) -> None:
        """Pick the locker commands out of what the MQTT client received (sync, on the loop)."""
        for m in messages:
            target = self._cmd_topics.get(m.topic)
            if target is None:
                continue
            s, dev_id = target
            task = asyncio.create_task(s.lockers.submit(dev_id, m.payload, time.monotonic()))
            self._intake.add(task)
            task.add_done_callback(self._intake.discard)

    # -- metrics ---------------------------------------------------------------------------

    def metrics_lines(self) -> list[str]:
        """Prometheus text lines (with a TYPE line per metric name)."""
        out: list[str] = []
        typed: set[str] = set()
        for name, labels, value in sorted(self.samples(), key=lambda x: x[0]):
            if name not in typed:
                typed.add(name)
                kind = "counter" if name.endswith("_total") else "gauge"
                out.append(f"# TYPE {name} {kind}")
            inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
            out.append(f"{name}{{{inner}}} {float(value)}" if inner else f"{name} {float(value)}")
        return out

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        out: list[tuple[str, dict[str, str], float]] = []
        for s in self.schedulers:
            bus = {"bus": s.bus.id}
            out.append(("courtyard_fieldbus_up", bus, 1.0 if s.online else 0.0))
            out.append(("courtyard_fieldbus_cycles_total", bus, s.cycles))
            out.append(("courtyard_fieldbus_transactions_total", bus, s.transactions))
            out.append(("courtyard_fieldbus_port_failures_total", bus, s.port_failures))
            out.append(("courtyard_fieldbus_cycle_seconds", bus, round(s.last_cycle_s, 4)))
            out.append(("courtyard_fieldbus_stray_bytes_total", bus, s.link.stray_bytes))
            out.append(("courtyard_fieldbus_commands_total", bus, s.lockers.commands_total))
            waits = s.lockers.latencies_s
            out.append(("courtyard_fieldbus_command_wait_seconds_max", bus, max(waits, default=0)))
            for d in s.devices:
                labels = {**bus, "device": d.id}
                out.append(("courtyard_fieldbus_device_up", labels, 1.0 if d.online else 0.0))
                for name, value in vars(d.counters).items():
                    out.append((f"courtyard_fieldbus_{name}_total", labels, value))
        out.append(("courtyard_fieldbus_published_total", {}, self.outbox.published))
        out.append(("courtyard_fieldbus_dropped_total", {}, self.outbox.dropped))
        return out
