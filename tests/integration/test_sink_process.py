"""The InfluxDB sink in its own process: a child killed with SIGKILL is started again by the
supervisor and every point still arrives exactly once (real influxd 1.x)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from gateway.sinks.influx import InfluxSettings
from gateway.sinks.process import RESTART_BACKOFF_S, STABLE_AFTER_S, SinkProcess
from tests.integration.test_influx_sink import Journal, v1
from tests.support.influx import InfluxdServer

pytestmark = pytest.mark.integration


def wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_sink_process_is_restarted_and_nothing_is_lost_or_doubled(
    tmp_path: Path, influxd_v1: InfluxdServer
) -> None:
    db = f"proc_{uuid.uuid4().hex[:8]}"
    influxd_v1.create_database(db)
    journal = Journal(tmp_path / "journal.db", f"c-{uuid.uuid4().hex[:8]}")
    clock = [0.0]
    sink = SinkProcess(
        v1(influxd_v1, db),
        str(journal.path),
        batch_size=500,
        monotonic=lambda: clock[0] + time.monotonic(),
    )
    try:
        journal.add(3000)
        sink.start()
        assert sink.flush(60), sink.stats()
        stats = sink.stats()
        assert stats["points_written_total"] == 3000 and stats["healthy"] is True
        first = sink._proc.pid

        os.kill(first, signal.SIGKILL)
        wait(lambda: not sink.alive, 10, "the child to die")
        journal.add(2000)  # written while no sink runs: they wait in the journal
        sink.supervise()  # notices, logs, schedules the restart
        assert not sink.alive and sink.stats()["healthy"] is False
        clock[0] += 60.0  # past the restart delay
        sink.supervise()
        wait(lambda: sink.alive, 30, "the new child")
        assert sink._proc.pid != first and sink.restarts_total == 1
        assert sink.flush(60), sink.stats()
        wait(lambda: influxd_v1.count(db, "meter", "energy_kwh") >= 5000, 30, "every point")
        assert influxd_v1.count(db, "meter", "energy_kwh") == 5000
        assert sink.stats()["process_restarts_total"] == 1
    finally:
        assert sink.stop(timeout=10)
        journal.close()


PARENT = """
import sys, time
from gateway.sinks.influx import InfluxSettings
from gateway.sinks.influx import InfluxSettings
from gateway.sinks.process import RESTART_BACKOFF_S, STABLE_AFTER_S, SinkProcess
sink = SinkProcess(InfluxSettings(url="http://127.0.0.1:9", api="v1", database="d"), sys.argv[1])
sink.start()
print(sink._proc.pid, flush=True)
time.sleep(600)
"""


def test_the_sink_process_exits_when_the_gateway_is_killed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", "c-orphan")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(journal.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.pid_exists(child)
        parent.kill()  # SIGKILL: no clean stop, the pipe closes with the process
        parent.wait(10)
        wait(lambda: not psutil.pid_exists(child) or _zombie(child), 15, "the orphan to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
        journal.close()


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_crash_looping_child_backs_off_and_a_stable_one_resets_the_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "journal.db", "c-loop")
    clock = [0.0]
    sink = SinkProcess(
        InfluxSettings(url="http://127.0.0.1:9", api="v1", database="d"),
        str(journal.path),
        monotonic=lambda: clock[0],
    )

    def crash_and_restart(uptime: float) -> float:
        """Let the child run ``uptime`` (fake) seconds, kill it; the delay chosen."""
        wait(lambda: sink.alive, 30, "a child")
        clock[0] += uptime
        sink.supervise()  # alive: it may count as stable
        os.kill(sink._proc.pid, signal.SIGKILL)
        wait(lambda: not sink.alive, 10, "the child to die")
        caplog.clear()
        sink.supervise()  # schedules the restart
        (delay,) = [float(r.getMessage().split(" in ")[1].split()[0]) for r in caplog.records]
        clock[0] += delay
        sink.supervise()  # restarts
        return delay

    try:
        with caplog.at_level(logging.ERROR, logger="courtyard.sinks.influx"):
            sink.start()
            assert [crash_and_restart(3.0) for _ in range(4)] == list(RESTART_BACKOFF_S[:4])
            assert crash_and_restart(STABLE_AFTER_S + 1) == RESTART_BACKOFF_S[0]
            assert sink.restarts_total == 5
    finally:
        assert sink.stop(timeout=10)
        journal.close()
