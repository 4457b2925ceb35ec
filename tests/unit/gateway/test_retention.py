"""Retention: old journal rows and dead letters go by ranges of ids, a chunk at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway import service
from gateway.config import Registry, Settings, StoreSettings
from gateway.store.journal import EXPIRE_CHUNK, DeadLetter, Store
from gateway.store.retention import Retention

NOW = 1_763_700_000_000


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(str(tmp_path / "c.db"), now_ms=lambda: NOW)
    s.open()
    s.register([("m-1", "c1", "meter", "b1")])
    yield s
    s.close()


def fill(store: Store, received: list[int]) -> None:
    """One journal row per entry of ``received`` (ids 1, 2, ... in that order), in one
    transaction (the connection is in autocommit mode: each row would be a synced commit)."""
    store.conn.execute("BEGIN")
    store.conn.executemany(
        "INSERT INTO journal (device_id, ts_ms, seq, kind, received_ms, body)"
        " VALUES (1, ?, ?, 0, ?, '{\"power_w\":1.0}')",
        [(ms, i, ms) for i, ms in enumerate(received)],
    )
    store.conn.execute("COMMIT")


def ids(store: Store, table: str = "journal") -> list[int]:
    return [r for (r,) in store.conn.execute(f"SELECT id FROM {table} ORDER BY id")]


def test_old_rows_go_in_chunks_and_the_newest_stays(store):
    fill(store, [NOW - 10_000 + i for i in range(12_000)])  # the last 2,000 are young
    steps = list(store.expire_steps(NOW, chunk=3000))
    assert [journal for journal, _ in steps] == [3000, 3000, 3000, 1000]
    assert ids(store) == list(range(10_001, 12_001))


def test_a_row_stamped_late_is_never_deleted_early(store):
    # a clock stepped back: row 4 was received after the cutoff although its id is older
    fill(store, [NOW - 50, NOW - 40, NOW - 30, NOW + 500, NOW - 20, NOW + 600, NOW + 700])
    assert store.expire(NOW) <= 5
    left = {row_id: ms for row_id, ms in store.conn.execute("SELECT id, received_ms FROM journal")}
    assert all(ms >= NOW for ms in left.values() if ms != NOW - 20), left
    assert {4, 6, 7} <= left.keys()  # every young row kept


def test_unsent_rows_stay_until_the_sink_has_them(store):
    fill(store, [NOW - 1000 + i for i in range(100)])
    assert store.expire(NOW, keep_after_id=40) == 40
    assert ids(store)[0] == 41
    assert store.expire(NOW) == 59  # the sink caught up (or there is none): all but the newest
    assert ids(store) == [100]


def test_dead_letters_expire_too(store):
    dead = [DeadLetter(NOW - 100 + i, "community/x", "not_json", "", b"x") for i in range(50)]
    dead += [DeadLetter(NOW + i, "community/x", "not_json", "", b"x") for i in range(5)]
    store.commit([], dead, [])
    steps = list(store.expire_steps(NOW, chunk=20))
    assert sum(letters for _, letters in steps) == 50
    assert len(ids(store, "dead_letters")) == 5


def test_no_statement_of_a_pass_scans_a_table(store):
    """Every query retention runs is a primary-key search: a scan of a 90-day journal (hundreds
    of millions of rows) would hold the event loop for minutes."""
    fill(store, [NOW - 1000 + i for i in range(2000)])
    store.commit([], [DeadLetter(NOW - 5, "community/x", "not_json", "", b"x")], [])
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        assert sum(journal for journal, _ in store.expire_steps(NOW, chunk=500)) == 1000
    finally:
        store.conn.set_trace_callback(None)
    queries = {q for q in statements if q.startswith(("SELECT", "DELETE"))}
    assert any(q.startswith("DELETE FROM journal") for q in queries)
    assert any(q.startswith("DELETE FROM dead_letters") for q in queries)
    for query in queries:
        plan = [row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {query}")]
        assert plan and not any(step.startswith("SCAN") for step in plan), (query, plan)


def test_an_empty_store_expires_nothing(store):
    assert list(store.expire_steps(NOW)) == []


async def test_retention_expires_a_chunk_at_a_time_and_lets_the_loop_run(store):
    now = NOW + 91 * 86400_000  # the default retention is 90 days
    retention = Retention(store, 90, keep_cursor=None, now_ms=lambda: now)
    rows = 4 * EXPIRE_CHUNK
    fill(store, [NOW + i for i in range(rows)])
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    assert await retention.run() == (rows - 1, 0)
    counter.cancel()
    assert ids(store) == [rows]  # everything old but the newest row
    assert turns >= 4  # the loop ran between the transactions


async def test_the_gateway_builds_its_retention_from_the_settings(tmp_path):
    gw = service.Gateway(
        Settings(store=StoreSettings(path=str(tmp_path / "c.db"), retention_days=7)), Registry()
    )
    assert gw.retention.days == 7 and gw.retention.keep_cursor is None
    assert gw.retention.store is gw.store
