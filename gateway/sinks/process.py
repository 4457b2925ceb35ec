"""The InfluxDB sink in a process of its own, supervised by the gateway.

:class:`InfluxSink` is the same code either way; here it runs in a child process (the
``spawn`` start method: nothing of the parent's threads or sockets is inherited) that reads
the journal through its own SQLite connection. In a thread of the gateway it shared the
interpreter lock with the ingest: measured on 2 cores, a 100,000-message backlog drained
journal-only at ~31k-43k msg/s, and with the sink in a thread at ~18k-23k msg/s.

What crosses the process boundary: a pipe, on which the parent writes a byte after each
journal commit (never blocking: a full pipe already means "look again") and which it closes
to stop the child (a parent that dies closes it too: no orphan), and the sink's counters,
published by the child into lock-free shared memory each time its cursor moves and at least
every :data:`PUBLISH_EVERY_S` (so ``/metrics`` never waits on the child). No lock or event is
shared: a child killed while holding one would block the gateway. The cursor is in the
journal's SQLite file: the child dying loses nothing, and :meth:`SinkProcess.supervise`
(called periodically by the gateway) starts a new one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

from gateway import logs
from gateway.config import InfluxSettings
from gateway.sinks.influx import CURSOR, InfluxSink
from gateway.store.reader import JournalReader

log = logging.getLogger("courtyard.sinks.influx")

PUBLISH_EVERY_S = 0.05
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 60.0
"""A child that ran this long without dying starts the backoff from the beginning again."""
# the numeric entries of InfluxSink.stats(), in the order of the shared array
FIELDS = (
    "points_written_total",
    "batches_total",
    "retries_total",
    "rejected_points_total",
    "skipped_rows_total",
    "dropped_fields_total",
    "cursor",
    "head",
    "healthy",
    "lag_points",
    "lag_seconds",
)
ERROR_BYTES = 500


class SinkProcess:
    """:class:`InfluxSink`'s interface (``start``, ``notify``, ``stats``, ``flush``,
    ``stop``) over a child process; ``supervise()`` restarts a child that died."""

    cursor: str | None = CURSOR
    supervised = True

    def __init__(
        self,
        settings: InfluxSettings,
        db_path: str,
        *,
        batch_size: int = 5000,
        log_level: int = logging.INFO,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.db_path, self.batch_size = settings, db_path, batch_size
        self.log_level = log_level
        self._monotonic = monotonic
        self._ctx = multiprocessing.get_context("spawn")
        self._wake: Any = None  # the write end of the child's pipe
        self._values = self._ctx.Array("d", len(FIELDS), lock=False)
        self._error = self._ctx.Array("c", ERROR_BYTES, lock=False)
        self._proc: Any = None
        self._stopping = False
        self._restarts = 0
        self._restart_at: float | None = None
        self._started_at = 0.0
        self.restarts_total = 0

    def start(self) -> None:
        self._stopping = False
        receive, self._wake = self._ctx.Pipe(duplex=False)
        os.set_blocking(self._wake.fileno(), False)
        self._proc = self._ctx.Process(
            target=_child,
            args=(
                self.settings,
                self.db_path,
                self.batch_size,
                self.log_level,
                receive,
                self._values,
                self._error,
            ),
            name="courtyard-influx-sink",
            daemon=True,
        )
        self._proc.start()
        self._started_at = self._monotonic()
        receive.close()  # the child has its own copy
        self.notify()  # look at the journal at once

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def notify(self) -> None:
        """New rows are in the journal (never blocks)."""
        if self._wake is None:
            return
        # full: the child has wake-ups waiting; gone: supervise() sees to it
        with contextlib.suppress(OSError):
            os.write(self._wake.fileno(), b"w")

    def stats(self) -> dict[str, Any]:
        """What :meth:`InfluxSink.stats` reports, as last published by the child, plus
        ``process_restarts_total``."""
        out: dict[str, Any] = {}
        for name, value in zip(FIELDS, self._values, strict=True):
            out[name] = float(value) if name == "lag_seconds" else int(value)
        out["healthy"] = bool(out["healthy"]) and self.alive
        error = bytes(self._error).split(b"\0", 1)[0].decode("utf-8", "replace")
        if not self.alive and not self._stopping:
            error = error or "the sink process is not running"
        out["last_error"] = error
        out["process_restarts_total"] = self.restarts_total
        return out

    def flush(self, timeout: float) -> bool:
        """Wait until the child's cursor reaches the journal head as it is now."""
        with closing(JournalReader(self.db_path)) as reader:
            target = reader.head()
        self.notify()
        deadline = self._monotonic() + timeout
        while self._monotonic() < deadline:
            if self._values[FIELDS.index("cursor")] >= target:
                return True
            time.sleep(0.01)
        return False

    def supervise(self) -> None:
        """Start a new child if the last one died, with a growing delay between restarts
        (1 s up to 30 s) that starts over once a child has run for :data:`STABLE_AFTER_S`."""
        if self._stopping or self._proc is None:
            return
        now = self._monotonic()
        if self._proc.is_alive():
            if now - self._started_at >= STABLE_AFTER_S:
                self._restarts = 0
            return
        if self._restart_at is None:
            delay = RESTART_BACKOFF_S[min(self._restarts, len(RESTART_BACKOFF_S) - 1)]
            log.error(
                "the InfluxDB sink process exited with code %s; starting it again in %.0f s",
                self._proc.exitcode,
                delay,
            )
            self._restart_at = now + delay
            return
        if now >= self._restart_at:
            self._restart_at = None
            self._restarts += 1
            self.restarts_total += 1
            self._close_pipe()
            self.start()

    def _close_pipe(self) -> None:
        if self._wake is not None:
            self._wake.close()
            self._wake = None

    def stop(self, timeout: float = 5.0) -> bool:
        """Let the child finish the batch being written and exit; False if it had to be
        killed."""
        self._stopping = True
        self._close_pipe()  # end of file: the child finishes its batch and exits
        proc, clean = self._proc, True
        if proc is not None:
            proc.join(timeout + 2.0)
            if proc.is_alive():
                clean = False
                log.warning("the InfluxDB sink process did not stop in time: killed")
                proc.kill()
                proc.join(2.0)
        return clean


def _child(
    settings: InfluxSettings,
    db_path: str,
    batch_size: int,
    log_level: int,
    wake: Any,
    values: Any,
    error: Any,
) -> None:
    """The child's main: the sink's thread does the work, a second thread publishes the
    counters (as soon as the cursor moves, else every :data:`PUBLISH_EVERY_S`), this one
    relays wake-ups until the pipe reaches its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent decides when this one stops
    logs.setup(log_level)
    sink = InfluxSink(settings, db_path, batch_size=batch_size)
    sink.start()
    done = threading.Event()
    publisher = threading.Thread(
        target=_publish_until, args=(done, sink, values, error), name="courtyard-sink-counters"
    )
    publisher.start()
    fd = wake.fileno()
    try:
        while os.read(fd, 65536):  # blocks; b"" once the parent closed the pipe (or died)
            sink.notify()
    finally:
        sink.stop()
        done.set()
        publisher.join()
        _publish(sink, values, error)


def _publish_until(done: threading.Event, sink: InfluxSink, values: Any, error: Any) -> None:
    while not done.is_set():
        sink.wait_progress(PUBLISH_EVERY_S)
        _publish(sink, values, error)


def _publish(sink: InfluxSink, values: Any, error: Any) -> None:
    stats = sink.stats()
    for i, name in enumerate(FIELDS):
        values[i] = float(stats[name])
    text = str(stats.get("last_error") or "").encode()[: ERROR_BYTES - 1]
    error[: len(text) + 1] = text + b"\0"
