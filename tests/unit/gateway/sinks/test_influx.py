"""The InfluxDB sink against a fake writer: cursor, retries_total, bisection, logs, stop, stats.

The journal is a real SQLite file; time is injected (``now``, ``sleep``, ``jitter``) so that
backoff tests take milliseconds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from devices.model import Decoded
from gateway.sinks.influx import (
    CURSOR,
    InfluxRejected,
    InfluxSettings,
    InfluxSink,
    InfluxUnavailable,
    http_error,
    parse_retry_after,
)
from gateway.store.journal import Accepted, Store
from gateway.store.reader import JournalReader

T0 = 1_795_305_594_000
SETTINGS = InfluxSettings(url="http://127.0.0.1:1", api="v1", database="db")


class FakeWriter:
    """Records every body; ``fail(body)`` may return an exception to raise instead."""

    def __init__(self, fail: Callable[[bytes], Exception | None] = lambda body: None) -> None:
        self.fail = fail
        self.bodies: list[bytes] = []
        self.accepted: list[bytes] = []

    def write(self, body: bytes) -> None:
        self.bodies.append(body)
        exc = self.fail(body)
        if exc is not None:
            raise exc
        self.accepted.extend(body.split(b"\n"))

    def close(self) -> None:
        pass


def fill(db: Path, n: int, *, devices: int = 10, start: int = 0, poison: int | None = None) -> None:
    """``n`` telemetry rows from ``devices`` meters; row ``poison`` comes from device "poison"."""
    store = Store(str(db))
    store.open()
    names = [f"m-{i}" for i in range(devices)] + ["poison"]
    store.register([(name, "c1", "meter", "b1") for name in names])
    batch = []
    for i in range(start, start + n):
        name = "poison" if i == poison else names[i % devices]
        msg = Decoded(
            device_class="meter",
            device=name,
            kind="telemetry",
            ts_ms=T0 + i,
            seq=i,
            fields={"energy_kwh": i * 0.5, "power_w": float(i)},  # the decoder writes floats
        )
        batch.append(Accepted(store.devices[name], msg, T0 + i))
    store.write(batch, [])
    store.close()


def add_status(db: Path, n: int) -> None:
    store = Store(str(db))
    store.open()
    st = store.devices["m-0"]
    msgs = [
        Decoded(
            device_class="meter", device="m-0", kind="status", ts_ms=T0 + 10**6 + i, status="online"
        )
        for i in range(n)
    ]
    store.write([Accepted(st, m, T0) for m in msgs], [])
    store.close()


def cursor_of(db: Path) -> int:
    reader = JournalReader(str(db))
    try:
        return reader.load_cursor(CURSOR)
    finally:
        reader.close()


def dead_letters(db: Path) -> list[tuple[str, str, str, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT topic, reason, detail, head FROM dead_letters").fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def make_sink(db: Path) -> Iterator[Callable[..., InfluxSink]]:
    sinks: list[InfluxSink] = []

    def make(writer: FakeWriter, **kwargs: object) -> InfluxSink:
        kwargs.setdefault("sleep", lambda s: None)
        sink = InfluxSink(SETTINGS, str(db), writer=writer, **kwargs)  # type: ignore[arg-type]
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        assert sink.stop(timeout=5)


def test_every_row_is_written_once_in_batches_and_the_cursor_reaches_the_head(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 250)
    writer = FakeWriter()
    sink = make_sink(writer, batch_size=100)
    sink.start()
    assert sink.flush(10)
    assert len(writer.bodies) == 3
    assert len(writer.accepted) == len(set(writer.accepted)) == 250
    assert (
        writer.accepted[0]
        == b"meter,building=b1,community=c1,device=m-0 energy_kwh=0.0,power_w=0.0 "
        + str(T0).encode()
    )
    stats = sink.stats()
    assert stats["points_written_total"] == 250 and stats["batches_total"] == 3
    assert stats["lag_points"] == 0 and stats["lag_seconds"] == 0.0 and stats["healthy"]
    assert cursor_of(db) == 250


def test_the_cursor_moves_past_rows_that_are_not_telemetry(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 10)
    add_status(db, 5)
    sink = make_sink(FakeWriter())
    sink.start()
    assert sink.flush(10)
    assert cursor_of(db) == 15
    assert sink.stats()["lag_points"] == 0


def test_notify_wakes_the_sink_without_waiting_for_the_idle_poll(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 1)
    writer = FakeWriter()
    sink = make_sink(writer)
    sink.start()
    assert sink.flush(5)
    time.sleep(0.05)  # the sink is now waiting for news
    fill(db, 1, start=1)
    started = time.monotonic()
    sink.notify()
    assert sink.flush(5)
    assert time.monotonic() - started < 0.5
    assert len(writer.accepted) == 2


def test_it_resumes_from_the_saved_cursor(db: Path, make_sink: Callable[..., InfluxSink]) -> None:
    fill(db, 30)
    first = make_sink(FakeWriter())
    first.start()
    assert first.flush(5)
    assert first.stop()
    fill(db, 20, start=30)
    writer = FakeWriter()
    second = make_sink(writer)
    second.start()
    assert second.flush(5)
    assert len(writer.accepted) == 20


def test_an_outage_is_retried_with_the_cursor_held_and_logged_once(
    db: Path, make_sink: Callable[..., InfluxSink], caplog: pytest.LogCaptureFixture
) -> None:
    fill(db, 50)
    failures = iter([InfluxUnavailable("ConnectError: refused")] * 6)
    writer = FakeWriter(lambda body: next(failures, None))
    cursors: list[int] = []
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        cursors.append(cursor_of(db))

    clock = iter(range(1000, 2000, 5))
    sink = make_sink(writer, sleep=sleep, jitter=lambda: 1.0, now=lambda: float(next(clock)))
    caplog.set_level(logging.INFO, logger="courtyard.sinks.influx")
    sink.start()
    assert sink.flush(10)
    assert cursors == [0] * 6  # never advanced past the unwritten batch
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(writer.accepted) == 50
    assert sink.stats()["retries_total"] == 6
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [lvl for lvl, _ in messages] == ["WARNING", "INFO"], messages
    assert "ConnectError: refused" in messages[0][1]
    assert "recovered after" in messages[1][1] and "50 journal rows" in messages[1][1]


def test_backoff_is_capped_and_fully_jittered(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 1)
    failures = iter([InfluxUnavailable("down")] * 12)
    delays: list[float] = []
    jitters = iter([1.0] * 10 + [0.25, 0.0])
    sink = make_sink(
        FakeWriter(lambda b: next(failures, None)),
        sleep=delays.append,
        jitter=lambda: next(jitters),
    )
    sink.start()
    assert sink.flush(10)
    assert delays[:8] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert delays[10:] == [7.5, 0.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_in_seconds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header, now=0.0) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_795_305_594.0
    header = format_datetime(datetime.fromtimestamp(now + 42, UTC), usegmt=True)
    assert parse_retry_after(header, now) == pytest.approx(42.0)
    assert parse_retry_after(header, now + 100) == 0.0


def test_retry_after_is_honoured_before_backoff(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 1)
    now = 1_795_305_594.0
    date = format_datetime(datetime.fromtimestamp(now + 20, UTC), usegmt=True)
    answers = iter(
        [
            http_error(429, b"", "3"),
            http_error(503, b"", date),
            http_error(500, b"", None),
            http_error(503, b"", "100000"),
        ]
    )
    delays: list[float] = []
    sink = make_sink(
        FakeWriter(lambda b: next(answers, None)),
        sleep=delays.append,
        jitter=lambda: 1.0,
        now=lambda: now,
    )
    sink.start()
    assert sink.flush(10)
    assert delays == [3.0, pytest.approx(20.0), 2.0, 300.0]  # the last: a bounded Retry-After


def test_stop_during_a_backoff_returns_at_once_and_keeps_the_batch(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 10)
    attempted = threading.Event()

    def fail(body: bytes) -> Exception:
        attempted.set()
        return InfluxUnavailable("down")

    sink = make_sink(FakeWriter(fail), sleep=None, jitter=lambda: 1.0, backoff_base_s=60.0)
    sink.start()
    assert attempted.wait(5)
    time.sleep(0.05)
    started = time.monotonic()
    assert sink.stop(timeout=5)
    assert time.monotonic() - started < 1.0
    assert cursor_of(db) == 0


def test_a_rejected_batch_is_bisected_down_to_the_poison_point(
    db: Path, make_sink: Callable[..., InfluxSink], caplog: pytest.LogCaptureFixture
) -> None:
    fill(db, 1000, poison=617)

    def fail(body: bytes) -> Exception | None:
        if b"device=poison" in body:
            return http_error(400, b'{"error":"partial write: field type conflict"}', None)
        return None

    writer = FakeWriter(fail)
    sink = make_sink(writer)
    sink.start()
    assert sink.flush(10)
    assert len(writer.accepted) == len(set(writer.accepted)) == 999
    assert not any(b"poison" in line for line in writer.accepted)
    ((topic, reason, detail, head),) = dead_letters(db)
    assert (topic, reason) == ("influx:poison", "influx_rejected")
    assert detail == "partial write: field type conflict"
    assert head.startswith(b"meter,building=b1,community=c1,device=poison energy_kwh=308.5")
    assert len(writer.bodies) <= 2 * 10 + 1  # log2(1000) levels, two writes each
    stats = sink.stats()
    assert (
        stats["rejected_points_total"] == 1
        and stats["points_written_total"] == 999
        and stats["healthy"]
    )
    assert cursor_of(db) == 1000
    assert [r.levelname for r in caplog.records if r.name == "courtyard.sinks.influx"] == [
        "WARNING"
    ]


def test_unencodable_rows_become_dead_letters_and_do_not_block(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 5)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE journal SET body = '{}' WHERE id = 3")
    writer = FakeWriter()
    sink = make_sink(writer)
    sink.start()
    assert sink.flush(5)
    assert len(writer.accepted) == 4
    assert [(t, r, d) for t, r, d, _ in dead_letters(db)] == [
        ("influx:m-2", "influx_unencodable", "no_fields")
    ]
    assert sink.stats()["skipped_rows_total"] == 1


def test_auth_failures_are_an_outage_and_the_token_never_shows(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(db, 3)
    token = "s3cr3t-t0ken"
    settings = InfluxSettings(url="http://127.0.0.1:1", token=token, org="o", bucket="b")
    answers = iter(
        [
            http_error(401, b'{"code":"unauthorized","message":"unauthorized access"}', None),
            InfluxUnavailable(f"echo {token}"),
        ]
    )
    sink = InfluxSink(
        settings, str(db), writer=FakeWriter(lambda b: next(answers, None)), sleep=lambda s: None
    )
    caplog.set_level(logging.DEBUG)
    sink.start()
    assert sink.flush(5)
    sink.stop()
    assert sink.stats()["retries_total"] == 2
    text = caplog.text
    assert "HTTP 401: unauthorized access" in text and "bucket 'b'" in text
    assert token not in text and token not in sink.stats()["last_error"]
    assert token not in repr(settings)


def test_lag_is_reported_while_the_server_is_down(
    db: Path, make_sink: Callable[..., InfluxSink]
) -> None:
    fill(db, 20)
    down = threading.Event()
    release = threading.Event()

    def sleep(seconds: float) -> None:
        down.set()
        release.wait(5)

    writer = FakeWriter(lambda b: None if release.is_set() else InfluxUnavailable("down"))
    sink = make_sink(writer, sleep=sleep, now=lambda: T0 / 1000 + 90)
    sink.start()
    assert down.wait(5)
    stats = sink.stats()
    assert stats["healthy"] is False and stats["last_error"] == "down"
    assert stats["lag_points"] == 20
    assert stats["lag_seconds"] == pytest.approx(90.0)
    release.set()
    assert sink.flush(5)
    assert sink.stats()["healthy"] is True


def test_an_unexpected_error_restarts_the_loop_without_losing_rows(
    db: Path, make_sink: Callable[..., InfluxSink], caplog: pytest.LogCaptureFixture
) -> None:
    fill(db, 5)
    boom = iter([RuntimeError("bug")])
    writer = FakeWriter(lambda b: next(boom, None))
    sink = make_sink(writer)
    sink.start()
    assert sink.flush(5)
    assert len(writer.accepted) == 5
    assert "restarting" in caplog.text


def test_flush_times_out_when_the_sink_is_not_running(db: Path) -> None:
    fill(db, 1)
    sink = InfluxSink(SETTINGS, str(db), writer=FakeWriter())
    assert sink.flush(0.1) is False


@pytest.mark.parametrize("status", [400, 413, 422])
def test_content_errors_are_rejections(status: int) -> None:
    assert isinstance(http_error(status, b"", None), InfluxRejected)


@pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503, 504])
def test_other_errors_are_retried(status: int) -> None:
    assert isinstance(http_error(status, b"", None), InfluxUnavailable)


def test_the_server_message_is_extracted() -> None:
    assert http_error(400, b'{"error":"unable to parse"}', None).message == "unable to parse"
    assert (
        http_error(404, b'{"code":"not found","message":"bucket \\"x\\" not found"}', None).message
        == 'bucket "x" not found'
    )
    assert str(http_error(500, b"plain text\n", None)) == "HTTP 500: plain text"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"url": "http://x", "api": "v3", "bucket": "b"}, "api"),
        ({"url": "ftp://x", "bucket": "b"}, "url"),
        ({"url": "http://x", "api": "v2"}, "bucket"),
        ({"url": "http://x", "api": "v1"}, "database"),
        ({"url": "http://x", "bucket": "b", "timeout_s": 0}, "timeout_s"),
    ],
)
def test_settings_name_the_offending_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f"influxdb.{key} "):
        InfluxSettings(**kwargs)  # type: ignore[arg-type]


def test_a_journal_emptied_under_the_cursor_is_replayed_from_the_start(
    db: Path, make_sink: Callable[..., InfluxSink], caplog: pytest.LogCaptureFixture
) -> None:
    fill(db, 10)
    first = make_sink(FakeWriter())
    first.start()
    assert first.flush(5) and first.stop()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM journal")
    fill(db, 4, start=100)  # ids start again at 1, below the cursor (10)
    writer = FakeWriter()
    second = make_sink(writer)
    second.start()
    assert second.flush(5)
    assert len(writer.accepted) == 4
    assert cursor_of(db) == 4
    assert "behind the cursor" in caplog.text
