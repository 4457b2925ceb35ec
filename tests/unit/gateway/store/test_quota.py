"""The journal's disk quota on a fake clock and a small quota: meter readings are downsampled,
then dropped, only behind every cursor; alarms, door events and statuses never; and with
nothing left to shed the ingest holds (nothing committed, nothing acknowledged) and the
``store_degraded`` alert stays up until there is room again."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices.model import Decoded
from gateway.ingest import Ingest
from gateway.store.journal import Accepted
from gateway.store.pressure import FLOOR, QUOTA, StorePressure, Usage, classify
from gateway.store.queries import Queries
from gateway.store.quota import DOWNSAMPLED
from gateway.store.schema import TELEMETRY
from tests.support.rules_harness import Harness

METERS = [f"m-{i}" for i in range(4)]
DEVICES: list[dict[str, Any]] = [
    *({"id": m, "community": "c1", "class": "meter", "secret": "ab" * 16} for m in METERS),
    {"id": "gate-north", "community": "c1", "class": "access", "secret": "cd" * 16},
]
SECONDS = 1800  # half an hour of one reading a second from each meter
BUCKET_MS = 60_000
CURSORS = ("influx", "rules", "state")
MIB = 2**20


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    qos: int
    packet_id: int
    received_at_ms: int


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "c.db", DEVICES, rules={"store_degraded": {"clear_after_s": 30}})
    yield harness
    harness.close()


def fill(h: Harness) -> None:
    """Readings from every meter each second; a door event every 50 s, a forced door every
    300 s and a leak alarm every 400 s in between, in commits of a minute each."""
    start = h.clock.now_ms()
    seq = 0
    for minute in range(SECONDS // 60):
        batch: list[Accepted] = []
        for s in range(minute * 60, minute * 60 + 60):
            ts = start + s * 1000
            for i, m in enumerate(METERS):
                st = h.store.devices[m]
                seq += 1
                fields = {"energy_kwh": 100.0 + s / 10 + i, "power_w": float(1000 + s % 7 * 10)}
                batch.append(
                    Accepted(st, Decoded("meter", m, "telemetry", ts, seq=seq, fields=fields), ts)
                )
            events = []
            if s % 50 == 0:
                events.append(("gate-north", "access", "door_opened", {"method": "card"}))
            if s % 300 == 7:
                events.append(("gate-north", "access", "door_forced", {}))
            if s % 400 == 9:
                events.append((METERS[0], "meter", "leak_detected", {}))
            for device, cls, name, attrs in events:
                st = h.store.devices[device]
                seq += 1
                m_ = Decoded(cls, device, "event", ts, seq=seq, event=name, attrs=attrs)
                batch.append(Accepted(st, m_, ts))
        h.store.write(batch, [])
        h.alerting.on_commit(batch)
    h.clock.advance(SECONDS * 1000)


def set_cursors(h: Harness, position: int) -> None:
    with h.store.transaction() as conn:
        for name in CURSORS:
            conn.execute(
                "INSERT INTO cursors (name, position, updated_ms) VALUES (?, ?, 0)"
                " ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (name, position),
            )


def rows(h: Harness, sql: str = "", params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return h.store.conn.execute(
        "SELECT id, device_id, ts_ms, seq, kind, flag, body FROM journal" + sql + " ORDER BY id",
        params,
    ).fetchall()


def pressure(h: Harness, max_bytes: int) -> StorePressure:
    p = StorePressure(
        h.store,
        max_bytes=max_bytes,
        min_free_bytes=0,
        downsample_every_ms=BUCKET_MS,
        keep_cursors=CURSORS,
        clock=h.clock,
        reserve_bytes=0,
        chunk=1000,
        chunks_per_check=1000,
    )
    p.alert = h.alerting.store_health
    return p


async def test_meter_readings_are_downsampled_then_dropped_and_nothing_else_is_shed(h):
    fill(h)
    everything = rows(h)
    head = everything[-1][0]
    cursor = everything[len(everything) * 3 // 4][0]  # the sink has sent three quarters
    set_cursors(h, cursor)
    events_before = rows(h, " WHERE kind != ?", (TELEMETRY,))
    unsent_before = rows(h, " WHERE id > ?", (cursor,))
    meter_ids = {h.store.devices[m].id for m in METERS}
    used = pressure(h, 0).measure().used_bytes

    # 1. a quota a little under what is used: downsampling is enough
    p = pressure(h, used - used // 5)
    await p.check()
    assert p.shed_total["downsampled"] > 0
    assert p.shed_total["dropped"] == 0
    assert not p.held
    assert p.room(p.measure())[0] > 0
    assert rows(h, " WHERE kind != ?", (TELEMETRY,)) == events_before  # no event shed
    assert rows(h, " WHERE id > ?", (cursor,)) == unsent_before  # nothing unsent touched
    assert h.store.conn.execute("SELECT max(id) FROM journal").fetchone()[0] == head
    downsampled = rows(h, " WHERE flag = ?", (DOWNSAMPLED,))
    assert downsampled and all(r[0] <= cursor and r[1] in meter_ids for r in downsampled)
    # oldest first: every downsampled row is older than every raw one still behind the cursor
    raw_behind = rows(h, " WHERE id <= ? AND kind = ? AND flag = ''", (cursor, TELEMETRY))
    if raw_behind:
        assert max(r[0] for r in downsampled) < min(r[0] for r in raw_behind)
    # the alert went up with the first shed row; the quota is met again, so it clears once
    # the rule's clear_after_s has passed without another shed
    assert ("store", "store_degraded") in h.active()
    assert p.shed_total["downsampled"] == len(everything) - len(rows(h))

    # the readings API answers from the aggregates: a counter's value is its exact last
    # reading of the bucket, a gauge the mean of the bucket's readings
    m0 = h.store.devices[METERS[0]].id
    raw = {(r[2], r[3]): orjson.loads(r[6]) for r in everything if r[1] == m0 and r[4] == 0}
    first = min(ts for ts, _ in raw)
    bucket = [v for (ts, _), v in sorted(raw.items()) if first <= ts < first + BUCKET_MS]
    q = Queries(str(h.path))
    try:
        energy = q.readings(
            m0,
            "energy_kwh",
            since=first,
            until=first + BUCKET_MS - 1,
            every_ms=None,
            counter=True,
            limit=100,
            cursor=None,
        ).items
        power = q.readings(
            m0,
            "power_w",
            since=first,
            until=first + BUCKET_MS - 1,
            every_ms=BUCKET_MS,
            counter=False,
            limit=100,
            cursor=None,
        ).items
    finally:
        q.close()
    assert [pt["value"] for pt in energy] == [bucket[-1]["energy_kwh"]]
    assert power[0]["value"] == pytest.approx(sum(b["power_w"] for b in bucket) / len(bucket))

    # 2. the quota tightened step by step down to nothing: at every step what is shed is in
    # the stated order (nothing dropped while a raw reading behind the cursor is left; the
    # oldest first), and nothing else is touched; at the end, nothing is left to shed
    step = max(used // 20, 4096)
    for _ in range(1000):  # bounded: a policy that never holds fails, not hangs
        if p.held:
            break
        h.clock.advance(1000)
        p.max_bytes = max(p.measure().used_bytes - step, 4096)
        before = {r[0] for r in rows(h)}
        downsampled_before = p.shed_total["downsampled"]
        await p.check()
        gone = before - {r[0] for r in rows(h)}
        downsampled = {r[0] for r in rows(h, " WHERE flag = ?", (DOWNSAMPLED,))}
        raw_behind = rows(h, " WHERE id <= ? AND kind = ? AND flag = ''", (cursor, TELEMETRY))
        if p.shed_total["dropped"]:
            assert not raw_behind, "a reading was dropped while raw ones were left"
        if raw_behind and downsampled:
            assert max(downsampled) < min(r[0] for r in raw_behind)  # oldest first
        if gone and p.shed_total["downsampled"] == downsampled_before:  # a step of drops only
            kept = [r[0] for r in rows(h, " WHERE id <= ? AND kind = ?", (cursor, TELEMETRY))]
            assert max(gone) < min(kept, default=head)  # the oldest went
        assert rows(h, " WHERE kind != ?", (TELEMETRY,)) == events_before
        assert rows(h, " WHERE id > ?", (cursor,)) == unsent_before
    assert p.shed_total["dropped"] > 0

    # 3. nothing left that every sink has: hold, and say why
    assert p.held and not p.may_commit() and p.holds_total == 1
    assert "nothing left to shed" in p.reasons[QUOTA]
    assert not rows(
        h,
        " WHERE id <= ? AND kind = ? AND device_id IN (?, ?, ?, ?)",
        (cursor, TELEMETRY, *meter_ids),
    )
    assert rows(h, " WHERE kind != ?", (TELEMETRY,)) == events_before
    assert rows(h, " WHERE id > ?", (cursor,)) == unsent_before
    alert = h.alerting.alerts.get("store", "store_degraded")
    assert alert is not None and "holding" in alert.details[QUOTA]
    h.clock.advance(60_000)
    await p.check()
    assert p.held and p.holds_total == 1  # one hold, however long
    assert ("store", "store_degraded") in h.active()

    # 4. the sink catches up: what it sent may go, there is room, the hold ends; the alert
    # clears once the store has stayed well for the rule's clear_after_s
    set_cursors(h, head)
    p.max_bytes = p.measure().used_bytes - 1
    await p.check()
    assert not p.held and p.may_commit() and QUOTA not in p.reasons
    assert rows(h, " WHERE kind != ?", (TELEMETRY,)) == events_before
    assert ("store", "store_degraded") in h.active()
    h.clock.advance(31_000)
    assert ("store", "store_degraded") not in h.active()
    types = [
        (n["type"], n["data"]["rule"]) for n in h.notices() if n["data"].get("device") == "store"
    ]
    assert types == [("alert.raised", "store_degraded"), ("alert.cleared", "store_degraded")]


async def test_a_quota_never_sheds_what_a_sink_has_not_sent(h):
    fill(h)
    set_cursors(h, 0)  # InfluxDB unreachable since before the first reading
    before = rows(h)
    p = pressure(h, 4096)
    await p.check()
    assert rows(h) == before
    assert p.shed_total == {} and p.held and p.holds_total == 1
    assert ("store", "store_degraded") in h.active()


async def test_held_ingest_commits_and_acknowledges_nothing_until_there_is_room(h):
    fill(h)
    set_cursors(h, 0)
    p = pressure(h, 4096)
    await p.check()
    assert p.held
    acks: list[tuple[object, list[int]]] = []
    ingest = Ingest(
        h.store, prefix="community", acker=lambda t, ids: acks.append((t, ids)), clock=h.clock
    )
    ingest.observer = p
    rows_before = len(rows(h))
    payload = orjson.dumps({"ts": h.clock.now_ms(), "seq": 1, "energy_kwh": 1.5})
    ingest.on_batch([Msg("community/c1/meter/m-1/telemetry", payload, 1, 7, h.clock.now_ms())], "c")
    ingest.on_batch(
        [
            Msg(
                "community/c1/access/gate-north/event",
                orjson.dumps({"event": "door_forced"}),
                1,
                8,
                h.clock.now_ms(),
            )
        ],
        "c",
    )
    h.clock.advance(5000)
    assert acks == [] and len(rows(h)) == rows_before and ingest.pending == 2
    p.max_bytes = 0  # the operator lifts the quota
    await p.check()
    h.clock.advance(1000)
    assert acks == [("c", [7, 8])] and len(rows(h)) == rows_before + 2


async def test_a_full_disk_gives_up_the_reserve_and_raises_the_alert(h, tmp_path):
    p = StorePressure(
        h.store,
        max_bytes=0,
        min_free_bytes=0,
        downsample_every_ms=BUCKET_MS,
        keep_cursors=CURSORS,
        clock=h.clock,
        reserve_bytes=4096,
    )
    p.alert = h.alerting.store_health
    p.start()
    assert p.reserve_path.stat().st_size == 4096
    full = sqlite3.OperationalError("database or disk is full")
    p.commit_failed(full)
    p.commit_failed(full)
    assert not p.reserve_path.exists()
    assert p.write_failures_total["disk_full"] == 2 and "disk_full" in p.reasons
    assert ("store", "store_degraded") in h.active()
    assert not p.may_commit()  # no retry eats the reserve given up for the alert...
    await p.check()
    assert p.may_commit()  # ...until the disk has room: the first commit that works recovers
    assert "disk_full" in p.reasons
    p.commit_failed(sqlite3.OperationalError("attempt to write a readonly database"))
    assert set(p.reasons) == {"disk_full", "read_only"}
    p.commit_ok()
    assert not p.reasons and not p.degraded
    await p.check()
    assert p.reserve_path.exists()  # made again once there is room
    h.clock.advance(31_000)
    assert ("store", "store_degraded") not in h.active()


def test_the_tighter_limit_binds_and_free_pages_count_as_room(h):
    p = pressure(h, 100 * MIB)
    p.min_free_bytes = 64 * MIB
    # the quota binds: 10 MiB left under it, 36 MiB above the floor
    assert p.room(Usage(90 * MIB, 0, 100 * MIB)) == (10 * MIB, QUOTA, 10 * MIB)
    # the floor binds: 2 MiB of disk above it, plus 1 MiB of free pages inside the store
    assert p.room(Usage(10 * MIB, MIB, 66 * MIB)) == (3 * MIB, FLOOR, 64 * MIB // 10)
    p.max_bytes = p.min_free_bytes = 0
    assert p.room(Usage(10**12, 0, 0))[0] > 10**15  # no limit: never sheds


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (sqlite3.OperationalError("database or disk is full"), "disk_full"),
        (sqlite3.OperationalError("disk I/O error"), "io_error"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read_only"),
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
        (sqlite3.OperationalError("database is locked"), "write_error"),
    ],
)
def test_failed_commits_are_told_apart(exc, reason):
    assert classify(exc) == reason


async def test_a_bounded_shed_goes_on_at_the_next_check_before_any_hold(h):
    fill(h)
    set_cursors(h, rows(h)[-1][0])
    p = pressure(h, 4096)
    p.chunk, p.chunks_per_check = 200, 1  # one small transaction a check
    checks = 0
    while not p.held and checks < 2000:  # bounded: a policy that never holds fails, not hangs
        await p.check()
        checks += 1
        if not p.held:
            assert QUOTA in p.reasons and p.shedding  # degraded while it sheds
    assert p.held and p.holds_total == 1
    assert checks > 10  # it took many checks: never held while something was left to shed
    assert not rows(
        h,
        " WHERE kind = ? AND device_id IN (SELECT id FROM devices WHERE"
        " class = 'meter') AND id < (SELECT max(id) FROM journal)",
        (TELEMETRY,),
    )
