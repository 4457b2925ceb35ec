"""The InfluxDB sink against real servers: influxd 1.x (v1 API) and VictoriaMetrics (v2 API),
plus a scripted HTTP server of our own for 429/500/400 answers on demand.

Points are counted back on the server: ``SELECT count(...)`` on influxd, ``/api/v1/export``
on VictoriaMetrics.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from devices.model import Decoded
from gateway.sinks.influx import CURSOR, InfluxSettings, InfluxSink
from gateway.store.journal import Accepted, Store
from gateway.store.reader import JournalReader
from tests.support.influx import (
    Answer,
    FaultServer,
    InfluxdServer,
    VictoriaMetricsServer,
)

pytestmark = pytest.mark.integration

LOGGER = "courtyard.sinks.influx"
DEVICES = 200


def t0() -> int:
    """A recent whole second, in ms: far enough back that nothing is in the future."""
    return (int(time.time()) - 86_400) * 1000


class Journal:
    """A test journal: ``add(n)`` appends telemetry rows from ``DEVICES`` meters.

    Row ``i`` (0-based, across calls) has ``ts = t0 + i`` ms, so timestamps grow with ids.
    """

    def __init__(self, path: Path, community: str, *, poison: frozenset[int] = frozenset()) -> None:
        self.path, self.community, self.poison = path, community, poison
        self.t0, self.count = t0(), 0
        self.store = Store(str(path))
        self.store.open()
        names = [f"m-{k:03d}" for k in range(DEVICES)]
        # a quarter have no building: their points carry no building tag
        self.store.register(
            [
                (n, community, "meter", "" if k % 4 == 0 else f"b{k % 4}")
                for k, n in enumerate(names)
            ]
        )
        self.names = names

    def add(self, n: int) -> None:
        batch = []
        for i in range(self.count, self.count + n):
            name = self.names[i % DEVICES]
            fields: dict[str, float | bool] = {"energy_kwh": i * 0.25, "power_w": i % 5000}
            fields["on"] = i % 2 == 0
            if i in self.poison:  # a type conflict: "on" was a boolean
                fields["on"] = 1.0
            msg = Decoded(
                device_class="meter",
                device=name,
                kind="telemetry",
                ts_ms=self.t0 + i,
                seq=i,
                fields=fields,
            )
            batch.append(Accepted(self.store.devices[name], msg, self.t0 + i))
        for start in range(0, len(batch), 5000):
            self.store.write(batch[start : start + 5000], [])
        self.count += n

    def ts(self, row_id: int) -> int:
        return self.t0 + row_id - 1

    def cursor(self) -> int:
        reader = JournalReader(str(self.path))
        try:
            return reader.load_cursor(CURSOR)
        finally:
            reader.close()

    def reset_cursor(self) -> None:
        reader = JournalReader(str(self.path))
        try:
            reader.save_cursor(CURSOR, 0)
        finally:
            reader.close()

    def dead_letters(self) -> list[tuple[str, str, str, bytes]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT topic, reason, detail, head FROM dead_letters").fetchall()

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db", f"c-{uuid.uuid4().hex[:8]}")
    yield j
    j.close()


@pytest.fixture
def sinks() -> Iterator[list[InfluxSink]]:
    made: list[InfluxSink] = []
    yield made
    for sink in made:
        assert sink.stop(timeout=5)


def v1(server: InfluxdServer, db: str) -> InfluxSettings:
    return InfluxSettings(url=server.url, api="v1", database=db)


def v2(url: str) -> InfluxSettings:
    return InfluxSettings(url=url, api="v2", token="test-token", org="o", bucket="b")


def vm_count(server: VictoriaMetricsServer, community: str, upto_ts: int | None = None) -> int:
    series = server.export(f'meter_energy_kwh{{community="{community}"}}')
    if upto_ts is None:
        return sum(len(s["values"]) for s in series)
    return sum(1 for s in series for ts in s["timestamps"] if ts <= upto_ts)


def run_to_head(sink: InfluxSink, timeout: float = 120.0) -> float:
    """Start the sink, wait until it has caught up; the seconds it took."""
    started = time.perf_counter()
    sink.start()
    assert sink.flush(timeout), sink.stats()
    return time.perf_counter() - started


def log_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == LOGGER and r.levelno >= logging.INFO
    ]


# -- exactly once, and a replay does not duplicate ------------------------------------------------


def test_v1_rows_arrive_exactly_once_and_a_replay_overwrites(
    influxd_v1: InfluxdServer, journal: Journal, sinks: list[InfluxSink]
) -> None:
    db = influxd_v1.create_database(f"once_{uuid.uuid4().hex[:8]}")
    journal.add(20_000)
    sinks.append(sink := InfluxSink(v1(influxd_v1, db), str(journal.path), batch_size=5000))
    took = run_to_head(sink)
    print(f"\ninfluxd v1: 20,000 points in {took:.2f} s = {20_000 / took:,.0f} points/s")
    assert influxd_v1.count(db, "meter", "energy_kwh") == 20_000
    assert influxd_v1.count(db, "meter", "on") == 20_000
    tags = influxd_v1.query('SHOW TAG VALUES FROM "meter" WITH KEY = "device"', db)
    assert len(tags[0]["series"][0]["values"]) == DEVICES
    first = influxd_v1.query('SELECT * FROM "meter" WHERE "device" = \'m-001\' LIMIT 1', db)
    cols = first[0]["series"][0]["columns"]
    point = dict(zip(cols, first[0]["series"][0]["values"][0], strict=True))
    assert point["building"] == "b1" and point["community"] == journal.community
    assert point["on"] is False and point["energy_kwh"] == 0.25 and point["power_w"] == 1.0
    assert sink.stop()

    journal.reset_cursor()
    sinks.append(again := InfluxSink(v1(influxd_v1, db), str(journal.path)))
    run_to_head(again)
    assert again.stats()["points_written_total"] == 20_000
    assert influxd_v1.count(db, "meter", "energy_kwh") == 20_000


def test_v2_rows_arrive_exactly_once_and_a_replay_overwrites(
    victoria_v2: VictoriaMetricsServer, journal: Journal, sinks: list[InfluxSink]
) -> None:
    journal.add(20_000)
    sinks.append(sink := InfluxSink(v2(victoria_v2.url), str(journal.path), batch_size=5000))
    took = run_to_head(sink)
    print(f"\nVictoriaMetrics v2: 20,000 points in {took:.2f} s = {20_000 / took:,.0f} points/s")
    assert vm_count(victoria_v2, journal.community) == 20_000
    on = victoria_v2.export(f'meter_on{{community="{journal.community}"}}')
    assert len(on) == DEVICES and {v for s in on for v in s["values"]} == {0, 1}
    assert sink.stop()

    journal.reset_cursor()
    sinks.append(again := InfluxSink(v2(victoria_v2.url), str(journal.path)))
    run_to_head(again)
    assert again.stats()["points_written_total"] == 20_000
    assert vm_count(victoria_v2, journal.community) == 20_000


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_write_throughput_in_batches_of_5000(
    api: str,
    influxd_v1: InfluxdServer,
    victoria_v2: VictoriaMetricsServer,
    journal: Journal,
    sinks: list[InfluxSink],
) -> None:
    n = 100_000
    journal.add(n)
    if api == "v1":
        db = influxd_v1.create_database(f"speed_{uuid.uuid4().hex[:8]}")
        settings = v1(influxd_v1, db)
    else:
        settings = v2(victoria_v2.url)
    sinks.append(sink := InfluxSink(settings, str(journal.path), batch_size=5000))
    took = run_to_head(sink)
    rate = n / took
    print(
        f"\n{api} ({'influxd 1.6' if api == 'v1' else 'VictoriaMetrics'}): {n:,} points "
        f"(3 fields each) in {took:.2f} s = {rate:,.0f} points/s"
    )
    if api == "v1":
        assert influxd_v1.count(db, "meter", "energy_kwh") == n
    else:
        assert vm_count(victoria_v2, journal.community) == n
    assert rate > 5_000


# -- an outage in the middle of the stream ------------------------------------------------------


@pytest.mark.parametrize("kind", ["influxd-v1", "victoria-v2"])
def test_an_outage_mid_stream_loses_nothing_and_logs_once(
    kind: str,
    tmp_path: Path,
    journal: Journal,
    sinks: list[InfluxSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server: InfluxdServer | VictoriaMetricsServer
    count: Callable[[int | None], int]
    if kind == "influxd-v1":
        influxd = server = InfluxdServer(tmp_path / "influxd")
        influxd.start()
        influxd.create_database("outage")
        settings = v1(influxd, "outage")

        def count(upto_ts: int | None) -> int:
            where = f"time <= {upto_ts}ms" if upto_ts is not None else ""
            return influxd.count("outage", "meter", "energy_kwh", where)
    else:
        victoria = server = VictoriaMetricsServer(tmp_path / "victoria")
        victoria.start()
        settings = v2(victoria.url)

        def count(upto_ts: int | None) -> int:
            return vm_count(victoria, journal.community, upto_ts)

    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        sink = InfluxSink(settings, str(journal.path), batch_size=1000, backoff_cap_s=0.5)
        sinks.append(sink)
        sink.start()
        for _ in range(5):  # the stream: 1,000 rows every 20 ms
            journal.add(1000)
            sink.notify()
            time.sleep(0.02)
        server.stop()
        for _ in range(15):
            journal.add(1000)
            sink.notify()
            time.sleep(0.02)
        deadline = time.monotonic() + 20
        while sink.stats()["healthy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sink.stats()["healthy"]
        held = journal.cursor()
        time.sleep(1.5)  # several retries_total while the server is down
        assert journal.cursor() == held < 20_000
        stats = sink.stats()
        assert stats["retries_total"] >= 2 and stats["lag_points"] == 20_000 - held
        assert stats["lag_seconds"] > 0

        server.start()
        # every row up to the held cursor was written before the outage
        if held:
            assert count(journal.ts(held)) == held
        assert sink.flush(60), sink.stats()
        assert count(None) == 20_000
    finally:
        server.stop()
    lines = log_lines(caplog)
    assert [lvl for lvl, _ in lines] == ["WARNING", "INFO"], lines
    assert "failing" in lines[0][1] and "recovered after" in lines[1][1]


# -- answers on demand: 429 with Retry-After, 500, then 204 -------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_429_and_500_are_retried_honouring_retry_after(
    api: str, journal: Journal, sinks: list[InfluxSink], caplog: pytest.LogCaptureFixture
) -> None:
    now = 1_795_305_594.0
    http_date = format_datetime(datetime.fromtimestamp(now + 12, UTC), usegmt=True)
    script: list[Answer] = [
        (429, {"Retry-After": "7"}, b'{"error":"too many requests"}'),
        (503, {"Retry-After": http_date}, b'{"message":"busy"}'),
        (500, {}, b'{"error":"internal"}'),
    ]

    def respond(path: str, headers: dict[str, str], body: bytes) -> Answer:
        return script.pop(0) if script else (204, {}, b"")

    journal.add(300)
    delays: list[float] = []
    caplog.set_level(logging.INFO, logger=LOGGER)
    with FaultServer(respond) as fault:
        settings = (
            InfluxSettings(
                url=fault.url, api="v1", database="db", username="u", password="pw-secret-1"
            )
            if api == "v1"
            else v2(fault.url)
        )
        sink = InfluxSink(
            settings, str(journal.path), sleep=delays.append, now=lambda: now, jitter=lambda: 1.0
        )
        sinks.append(sink)
        run_to_head(sink, timeout=10)
        assert sink.stop()
    assert delays == [7.0, pytest.approx(12.0), 2.0]  # Retry-After, HTTP date, then backoff
    assert len(fault.requests) == 4
    assert len({body for _, _, body in fault.requests}) == 1  # the same batch each time
    path, headers, body = fault.requests[-1]
    if api == "v1":
        assert path == "/write?db=db&precision=ms"
        assert headers["authorization"].startswith("Basic ")
    else:
        assert path == "/api/v2/write?org=o&bucket=b&precision=ms"
        assert headers["authorization"] == "Token test-token"
    assert len(body.split(b"\n")) == 300
    assert journal.cursor() == 300 and sink.stats()["retries_total"] == 3
    lines = log_lines(caplog)
    assert [lvl for lvl, _ in lines] == ["WARNING", "INFO"], lines
    assert "HTTP 429: too many requests" in lines[0][1]
    assert "test-token" not in caplog.text and "pw-secret-1" not in caplog.text


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_poison_point_is_bisected_into_the_dead_letters(
    api: str, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    journal = Journal(tmp_path / "j.db", "c1")
    journal.add(5000)
    poison_row = 3217  # 0-based: device m-017
    with sqlite3.connect(journal.path) as conn:
        conn.execute(
            "UPDATE devices SET device = 'poison' WHERE device = ?",
            (journal.names[poison_row % DEVICES],),
        )
    accepted: list[bytes] = []

    def respond(path: str, headers: dict[str, str], body: bytes) -> Answer:
        if b"device=poison" in body:
            return 400, {}, b'{"error":"unable to parse: bad point"}'
        accepted.extend(body.split(b"\n"))
        return 204, {}, b""

    with FaultServer(respond) as fault:
        settings = (
            InfluxSettings(url=fault.url, api="v1", database="db") if api == "v1" else v2(fault.url)
        )
        sink = InfluxSink(settings, str(journal.path), sleep=lambda s: None)
        sinks.append(sink)
        # every 200th row is the renamed device: 25 poison points
        run_to_head(sink, timeout=30)
        assert sink.stop()
    poisoned = {i for i in range(5000) if i % DEVICES == poison_row % DEVICES}
    assert len(accepted) == len(set(accepted)) == 5000 - len(poisoned)
    letters = journal.dead_letters()
    assert len(letters) == len(poisoned)
    assert {(t, r, d) for t, r, d, _ in letters} == {
        ("influx:poison", "influx_rejected", "unable to parse: bad point")
    }
    assert all(b"device=poison" in head for *_, head in letters)
    assert sink.stats()["rejected_points_total"] == len(poisoned) and journal.cursor() == 5000
    journal.close()


def test_a_field_type_conflict_on_influxd_is_a_dead_letter_not_an_outage(
    influxd_v1: InfluxdServer, tmp_path: Path, sinks: list[InfluxSink]
) -> None:
    db = influxd_v1.create_database(f"conflict_{uuid.uuid4().hex[:8]}")
    journal = Journal(tmp_path / "j.db", "c1", poison=frozenset({1234, 4321}))
    journal.add(5000)
    sinks.append(sink := InfluxSink(v1(influxd_v1, db), str(journal.path)))
    run_to_head(sink)
    assert influxd_v1.count(db, "meter", "energy_kwh") == 4998
    letters = journal.dead_letters()
    assert sorted(t for t, *_ in letters) == ["influx:m-034", "influx:m-121"]
    assert all("field type conflict" in detail for _, _, detail, _ in letters)
    assert sink.stats()["healthy"] and journal.cursor() == 5000
    journal.close()


def test_a_missing_database_is_an_outage_until_it_exists(
    influxd_v1: InfluxdServer,
    journal: Journal,
    sinks: list[InfluxSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = f"later_{uuid.uuid4().hex[:8]}"
    journal.add(1000)
    caplog.set_level(logging.INFO, logger=LOGGER)
    sinks.append(sink := InfluxSink(v1(influxd_v1, db), str(journal.path), backoff_cap_s=0.2))
    sink.start()
    wait(lambda: not sink.stats()["healthy"])
    assert "HTTP 404: database not found" in sink.stats()["last_error"]
    time.sleep(0.5)
    assert journal.cursor() == 0
    influxd_v1.create_database(db)
    assert sink.flush(20)
    assert influxd_v1.count(db, "meter", "energy_kwh") == 1000
    assert [lvl for lvl, _ in log_lines(caplog)] == ["WARNING", "INFO"]


def test_the_v2_api_against_influxd_1_6_is_an_outage_not_a_loss(
    influxd_v1: InfluxdServer,
    journal: Journal,
    sinks: list[InfluxSink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """influxd 1.6 answers 404 to /api/v2/write: the sink must hold its cursor and say so."""
    journal.add(100)
    caplog.set_level(logging.INFO, logger=LOGGER)
    sinks.append(sink := InfluxSink(v2(influxd_v1.url), str(journal.path), backoff_cap_s=0.2))
    sink.start()
    wait(lambda: sink.stats()["retries_total"] >= 3)
    assert journal.cursor() == 0 and not sink.stats()["healthy"]
    lines = log_lines(caplog)
    assert len(lines) == 1 and "HTTP 404" in lines[0][1] and "bucket 'b'" in lines[0][1]
    started = time.monotonic()
    assert sink.stop(timeout=5)
    assert time.monotonic() - started < 2


def test_names_that_need_escaping_arrive_intact(
    influxd_v1: InfluxdServer,
    victoria_v2: VictoriaMetricsServer,
    tmp_path: Path,
    sinks: list[InfluxSink],
) -> None:
    names = ["door 1", "a,b", "k=v", '"quoted"', "门禁-北", "back\\slash", "x\\y z"]
    community = f"c {uuid.uuid4().hex[:6]},="
    store = Store(str(tmp_path / "j.db"))
    store.open()
    store.register([(n, community, "meter", "b 1") for n in names])
    ts = t0()
    store.write(
        [
            Accepted(
                store.devices[n],
                Decoded(
                    device_class="meter",
                    device=n,
                    kind="telemetry",
                    ts_ms=ts + i,
                    seq=i,
                    fields={"p w,=": float(i)},
                ),
                ts,
            )
            for i, n in enumerate(names)
        ],
        [],
    )
    store.close()
    db = influxd_v1.create_database(f"names_{uuid.uuid4().hex[:8]}")
    for settings in (v1(influxd_v1, db), v2(victoria_v2.url)):
        sinks.append(sink := InfluxSink(settings, str(tmp_path / "j.db")))
        with sqlite3.connect(tmp_path / "j.db") as conn:
            conn.execute("DELETE FROM cursors")
        run_to_head(sink)
        assert sink.stop()
    got = influxd_v1.query('SELECT "p w,=", "device", "community", "building" FROM "meter"', db)
    rows = got[0]["series"][0]["values"]
    assert sorted(r[2] for r in rows) == sorted(names)
    assert {(r[3], r[4]) for r in rows} == {(community, "b 1")}
    exported = victoria_v2.export('{__name__=~"meter_p w,="}')
    assert sorted(
        s["metric"]["device"] for s in exported if s["metric"]["community"] == community
    ) == sorted(names)


def wait(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_stop_while_a_batch_is_being_written_waits_for_it(
    journal: Journal, sinks: list[InfluxSink]
) -> None:
    """stop() finishes the write in flight and saves the cursor; it does not abandon it."""
    entered, release = threading.Event(), threading.Event()

    def respond(path: str, headers: dict[str, str], body: bytes) -> Answer:
        entered.set()
        release.wait(5)
        return 204, {}, b""

    journal.add(10)
    with FaultServer(respond) as fault:
        sink = InfluxSink(InfluxSettings(url=fault.url, api="v1", database="db"), str(journal.path))
        sink.start()
        assert entered.wait(5)
        threading.Timer(0.3, release.set).start()
        assert sink.stop(timeout=5)
    assert journal.cursor() == 10
