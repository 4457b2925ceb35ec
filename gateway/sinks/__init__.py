"""Where journal telemetry goes beyond the store: InfluxDB, from a thread or a process of its
own, each reading the journal from a durable cursor.

:func:`build_sink` is how the gateway gets one; without ``[influxdb]`` it gets a
:class:`NoSink`, so the gateway never asks whether it has a sink.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from gateway.config import InfluxSettings


class Sink(Protocol):
    cursor: str | None
    """The journal cursor it reads from, which retention must never pass; None: none."""
    supervised: bool
    """True when :meth:`supervise` must be called periodically (a child process)."""

    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> bool: ...
    def notify(self) -> None:
        """New rows are in the journal (after each commit)."""
        ...

    def stats(self) -> dict[str, Any]: ...
    def supervise(self) -> None: ...


class NoSink:
    """No InfluxDB configured: the journal is the only store."""

    cursor: str | None = None
    supervised = False

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 5.0) -> bool:
        return True

    def notify(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}

    def supervise(self) -> None:
        return None


def build_sink(settings: InfluxSettings | None, db_path: str) -> Sink:
    """The sink the configuration asks for; influxdb-client is imported only then."""
    if settings is None:
        return NoSink()
    from gateway.sinks.influx import InfluxSink
    from gateway.sinks.process import SinkProcess

    if settings.own_process:
        return SinkProcess(
            settings, db_path, batch_size=settings.batch_size, log_level=logging.root.level
        )
    return InfluxSink(settings, db_path, batch_size=settings.batch_size)
