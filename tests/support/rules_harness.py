"""A store, the alerting part and a fake clock, fed like the ingest feeds them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from devices.model import Decoded
from gateway.clock import FakeClock
from gateway.config import Registry, Settings
from gateway.fieldbus.bridge import registry_with_serial
from gateway.rules.service import Alerting
from gateway.store.journal import Accepted, Store


class Harness:
    def __init__(
        self,
        path: Path,
        devices: list[dict[str, Any]],
        rules: dict[str, dict[str, Any]] | None = None,
        clock: FakeClock | None = None,
        serial: list[dict[str, Any]] | None = None,
    ) -> None:
        """``serial``: ``[[serial]]`` buses, whose buses and devices join the registry as the
        gateway's own (the rules treat them as bridged)."""
        self.path = path
        self.clock = clock or FakeClock()
        self.settings = Settings.model_validate(
            {"store": {"path": str(path)}, "rules": rules or {}, "serial": serial or []}
        )
        self.registry = registry_with_serial(
            Registry.model_validate({"devices": devices}), self.settings.serial
        )
        self.seq = itertools.count(int(self.clock.now_ms()))
        self.open()

    def open(self) -> None:
        # The rules on a fake clock, not power cuts: a sync per transaction only slows them.
        self.store = Store(str(self.path), now_ms=self.clock.now_ms, durability="normal")
        self.store.open()
        self.store.register(
            (d.id, d.community, d.device_class, d.building) for d in self.registry.devices
        )
        self.alerting = Alerting(self.settings, self.registry, self.store, clock=self.clock)
        self.alerting.start()
        self.engine = self.alerting.engine

    def close(self) -> None:
        """A clean stop."""
        self.engine.close()
        self.store.close()

    def crash(self) -> None:
        """The process dies: its timers with it, nothing saved on the way out."""
        for _, _, handle in self.engine.timers.values():
            handle.cancel()
        self.store.close()

    def send(self, device: str, kind: str, **body: Any) -> None:
        st = self.store.devices[device]
        now = self.clock.now_ms()
        ts = body.pop("ts", now)
        if kind == "event":
            m = Decoded(
                st.device_class,
                device,
                "event",
                ts,
                seq=next(self.seq),
                event=body.pop("event"),
                attrs=body,
            )
        elif kind == "status":  # any other key (a reason) rides along, as the decoder keeps it
            state = body.pop("state")
            m = Decoded(
                st.device_class, device, "status", ts, seq=next(self.seq), attrs=body, status=state
            )
        else:
            m = Decoded(st.device_class, device, "telemetry", ts, seq=next(self.seq), fields=body)
        batch = [Accepted(st, m, now)]
        self.store.write(batch, [])
        self.alerting.on_commit(batch)

    def event(self, device: str, name: str, **attrs: Any) -> None:
        self.send(device, "event", event=name, **attrs)

    def advance(self, seconds: float) -> None:
        self.clock.advance(int(seconds * 1000))

    def notices(self, type_: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.conn.execute("SELECT type, body FROM notices ORDER BY id").fetchall()
        return [json.loads(b) for t, b in rows if type_ is None or t == type_]

    def types(self) -> list[str]:
        return [n["type"] for n in self.notices()]

    def active(self) -> list[tuple[str, str]]:
        return sorted(self.alerting.alerts.open)
