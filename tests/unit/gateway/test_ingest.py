"""The ingest path on a real SQLite file, without a broker: decode, journal, ack after commit."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import orjson
import pytest

from gateway.clock import FakeClock
from gateway.ingest import Ingest
from gateway.store.journal import Store


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    qos: int = 1
    packet_id: int = 1
    received_at_ms: int = 1_763_700_000_000


class Acks:
    def __init__(self) -> None:
        self.calls: list[tuple[object, list[int]]] = []

    def __call__(self, token: object, ids: list[int]) -> None:
        self.calls.append((token, list(ids)))


NOW = 1_763_700_000_000


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "c.db"), now_ms=lambda: NOW)
    s.open()
    s.register([("m-1", "c1", "meter", "b1"), ("gate-north", "c1", "access", "")])
    yield s
    s.close()


def telemetry(seq: int, **fields: float) -> bytes:
    return orjson.dumps({"ts": NOW - 1000 + seq, "seq": seq, **fields})


def test_commit_then_ack(store):
    clock = FakeClock()
    acks = Acks()
    ingest = Ingest(store, clock=clock, prefix="community", acker=acks, commit_interval_s=0.001)
    msgs = [
        Msg("community/c1/meter/m-1/telemetry", telemetry(i, energy_kwh=1.0 + i), packet_id=i + 1)
        for i in range(10)
    ]
    ingest.on_batch(msgs, "conn-1")
    assert acks.calls == []  # nothing acknowledged before the commit
    clock.advance(20)
    assert acks.calls == [("conn-1", list(range(1, 11)))]
    (count,) = store.conn.execute("SELECT count(*) FROM journal").fetchone()
    assert count == 10
    assert store.devices["m-1"].latest["energy_kwh"][0] == 10.0
    assert store.devices["m-1"].online is True


def test_readings_wait_for_the_long_interval_and_an_event_pulls_the_commit_in(store):
    clock = FakeClock()
    acks = Acks()
    ingest = Ingest(
        store,
        clock=clock,
        prefix="community",
        acker=acks,
        commit_interval_s=0.01,
        telemetry_interval_s=0.5,
    )
    reading = Msg("community/c1/meter/m-1/telemetry", telemetry(1, power_w=5), packet_id=1)
    ingest.on_batch([reading], "conn")
    clock.advance(50)
    assert acks.calls == []  # only readings: they wait up to 0.5 s
    event = orjson.dumps({"ts": NOW, "seq": 2, "event": "door_forced"})
    ingest.on_batch([Msg("community/c1/access/gate-north/event", event, packet_id=2)], "conn")
    clock.advance(50)
    assert acks.calls == [("conn", [1, 2])]  # the event brought the readings along
    ingest.on_batch([Msg(reading.topic, telemetry(3, power_w=6), packet_id=3)], "conn")
    clock.advance(50)
    assert len(acks.calls) == 1  # and the next readings wait again


def test_a_thousand_waiting_readings_commit_without_the_long_wait(store):
    clock = FakeClock()
    acks = Acks()
    ingest = Ingest(
        store,
        clock=clock,
        prefix="community",
        acker=acks,
        commit_interval_s=0.01,
        telemetry_interval_s=5.0,
        commit_soon_at=100,
    )
    topic = "community/c1/meter/m-1/telemetry"
    msgs = [Msg(topic, telemetry(i, power_w=i), packet_id=i + 1) for i in range(100)]
    ingest.on_batch(msgs[:99], "conn")
    clock.advance(50)
    assert acks.calls == []  # 99 readings: they may wait
    ingest.on_batch(msgs[99:], "conn")
    clock.advance(50)
    assert acks.calls == [("conn", list(range(1, 101)))]


def test_our_own_command_echo_is_acked_without_other_traffic(store):
    clock = FakeClock()
    acks = Acks()
    ingest = Ingest(store, clock=clock, prefix="community", acker=acks, commit_interval_s=0.005)
    echo = Msg("community/c1/access/gate-north/cmd", b'{"id": "x"}', packet_id=9)
    ingest.on_batch([echo], "conn")
    clock.advance(50)
    assert acks.calls == [("conn", [9])] and ingest.ignored_total == 1


async def test_duplicates_stored_once(store):
    ingest = Ingest(store, prefix="community", acker=Acks())
    msg = Msg("community/c1/meter/m-1/telemetry", telemetry(1, power_w=5))
    ingest.on_batch([msg, msg], "t")
    ingest.flush()
    ingest.on_batch([msg], "t")
    ingest.flush()
    assert store.conn.execute("SELECT count(*) FROM journal").fetchone()[0] == 1
    assert store.duplicates_total == 2


async def test_rejected_goes_to_dead_letters_and_is_acked(store):
    acks = Acks()
    ingest = Ingest(store, prefix="community", acker=acks)
    ingest.on_batch(
        [
            Msg("community/c1/meter/m-1/telemetry", b"{not json", packet_id=7),
            Msg("community/c1/meter/m-1/extra/telemetry", b"{}", packet_id=8),
            Msg("community/c1/access/m-1/telemetry", telemetry(2, door_open=True), packet_id=9),
            Msg("community/c1/meter/m-1/telemetry", telemetry(3, power_w=1), packet_id=10),
        ],
        "t",
    )
    ingest.flush()
    assert acks.calls == [("t", [7, 8, 9, 10])]
    reasons = [r for (r,) in store.conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
    assert reasons == ["not_json", "bad_topic", "registry_mismatch"]
    assert store.dead_letter_counts["not_json"] == 1
    assert store.conn.execute("SELECT count(*) FROM journal").fetchone()[0] == 1


async def test_unknown_device_is_discovered_and_kept(store):
    ingest = Ingest(store, prefix="community", acker=Acks())
    ingest.on_batch([Msg("community/c2/parking/p-9/telemetry", b'{"occupied": true}')], "t")
    ingest.flush()
    st = store.devices["p-9"]
    assert not st.registered
    assert st.community == "c2"
    assert st.latest["occupied"][0] is True


async def test_store_failure_holds_acks_until_it_recovers(store, tmp_path):
    acks = Acks()
    ingest = Ingest(store, prefix="community", acker=acks)
    blocker = sqlite3.connect(store.path, timeout=0)
    blocker.execute("PRAGMA busy_timeout = 0")
    store.conn.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    ingest.on_batch([Msg("community/c1/meter/m-1/telemetry", telemetry(1, power_w=1))], "t")
    ingest.flush()
    assert acks.calls == []
    assert ingest.pending == 1
    blocker.execute("ROLLBACK")
    blocker.close()
    ingest.flush()
    assert acks.calls == [("t", [1])]
    assert store.conn.execute("SELECT count(*) FROM journal").fetchone()[0] == 1


async def test_state_survives_reopen(store):
    ingest = Ingest(store, prefix="community", acker=Acks())
    ingest.on_batch([Msg("community/c1/meter/m-1/telemetry", telemetry(5, energy_kwh=42))], "t")
    ingest.flush()  # no checkpoint: the state is rebuilt from the journal
    store.close()
    again = Store(store.path)
    again.open()
    assert again.devices["m-1"].latest["energy_kwh"][0] == 42
    assert again.devices["m-1"].online is True
    again.close()


async def test_retention_never_deletes_unsent_rows_or_the_newest(store):
    ingest = Ingest(store, prefix="community", acker=Acks())
    old = [
        Msg("community/c1/meter/m-1/telemetry", telemetry(i, power_w=i), received_at_ms=NOW + i)
        for i in range(10)
    ]
    ingest.on_batch(old, "t")
    ingest.flush()
    # rows 1..10; a sink has sent up to row 6; everything is older than the cutoff
    deleted = store.expire(NOW + 1000, keep_after_id=6)
    assert deleted == 6
    ids = [r for (r,) in store.conn.execute("SELECT id FROM journal ORDER BY id")]
    assert ids == [7, 8, 9, 10]
    # with no sink every old row may go, except the newest (row ids must never restart)
    assert store.expire(NOW + 1000) == 3
    assert [r for (r,) in store.conn.execute("SELECT id FROM journal")] == [10]


def test_a_field_name_flood_is_dead_lettered_past_the_caps(store):
    """One meter inventing names (issue 13, finding 5): at most 64 readings a message and 256
    names a device; the excess is dead-lettered with its reason and the rest goes on."""
    from gateway.field_cap import MAX_FIELDS_PER_DEVICE

    clock = FakeClock()
    ingest = Ingest(store, clock=clock, prefix="community", acker=Acks())
    topic = "community/c1/meter/m-1/telemetry"
    wide = orjson.dumps({"ts": NOW, "seq": 1, **{f"f{i}_w": 1.0 for i in range(65)}})
    msgs = [Msg(topic, wide, packet_id=1)]
    for n in range(20):  # 20 messages of 60 new names each: 1,200 names offered
        body = {"ts": NOW + n + 1, "seq": n + 2, **{f"x{n}_{i}_w": 1.0 for i in range(60)}}
        msgs.append(Msg(topic, orjson.dumps(body), packet_id=n + 2))
        ingest.on_batch([msgs[-1]], "conn")
        ingest.flush()
    ingest.on_batch([msgs[0]], "conn")
    ingest.on_batch([Msg(topic, telemetry(99, power_w=5.0), packet_id=99)], "conn")
    ingest.flush()
    latest = store.devices["m-1"].latest
    assert MAX_FIELDS_PER_DEVICE - 60 < len(latest) <= MAX_FIELDS_PER_DEVICE
    assert latest["power_w"][0] == 5.0  # a known name still lands
    assert store.dead_letter_counts["too_many_fields"] == 1 + 20 - MAX_FIELDS_PER_DEVICE // 60
