"""Device events are found through the partial index ``journal_events``, not by stepping over
every reading committed since the last event (the live stream reads on every event commit)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.api.stream import Filters, read_after
from gateway.store.journal import Store
from gateway.store.queries import Queries
from gateway.store.schema import EVENT, TELEMETRY

NOW = 1_763_700_000_000


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(str(tmp_path / "c.db"), now_ms=lambda: NOW)
    s.open()
    s.register([("m-1", "c1", "meter", "b1"), ("gate-north", "c1", "access", "")])
    rows = [(1, NOW + i, i, TELEMETRY, '{"power_w":1.0}') for i in range(20_000)]
    rows[5_000] = (2, NOW + 5_000, 5_000, EVENT, '{"event":"door_forced"}')
    rows[15_000] = (2, NOW + 15_000, 15_000, EVENT, '{"event":"door_held_open"}')
    # One transaction: the connection is in autocommit mode, where each row would be a
    # commit of its own, synced (``[store] durability = "full"``).
    s.conn.execute("BEGIN")
    s.conn.executemany(
        "INSERT INTO journal (device_id, ts_ms, seq, kind, received_ms, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(d, ts, seq, kind, ts, body) for d, ts, seq, kind, body in rows],
    )
    s.conn.execute("COMMIT")
    yield s
    s.close()


def plans(conn: sqlite3.Connection, run: Callable[[], object]) -> list[str]:
    """The query plan of every journal SELECT that ``run()`` executes on ``conn``."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    selects = [q for q in statements if q.startswith("SELECT") and "journal j" in q]
    assert selects
    return [" ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {q}")) for q in selects]


def test_the_event_index_is_for_the_kind_the_queries_name() -> None:
    assert EVENT == 1  # the index's WHERE and the queries say `kind = 1`


def test_the_live_stream_reads_events_through_the_index(store):
    everything = Filters(None, None, None, frozenset({"events"}))
    got: list[dict[str, Any]] = []

    def run() -> None:
        got.extend(read_after(store.conn, 0, 0, everything)[0])

    for plan in plans(store.conn, run):
        assert "journal_events" in plan, plan
    assert [item["id"] for item in got] == ["5001-0", "15001-0"]


def test_the_events_query_reads_through_the_index(store):
    queries = Queries(store.path)
    got: list[Any] = []

    def run() -> None:
        page = queries.events(None, since=NOW, until=NOW + 10**6, limit=10, cursor=None)
        got.extend(page.items)

    try:
        for plan in plans(queries._c(), run):
            assert "journal_events" in plan, plan
    finally:
        queries.close()
    assert [e["event"] for e in got] == ["door_forced", "door_held_open"]
