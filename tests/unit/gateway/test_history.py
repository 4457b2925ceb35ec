"""Reading history and events from a real SQLite store."""

from __future__ import annotations

import pytest

from devices.model import Decoded
from gateway.store.journal import Accepted, Store
from gateway.store.queries import Queries, QueryError

T0 = 1_763_700_000_000


@pytest.fixture
def db(tmp_path):
    store = Store(str(tmp_path / "h.db"))
    store.open()
    store.register([("m-1", "c1", "meter", "b1")])
    dev = store.devices["m-1"]
    rows = [
        Accepted(
            dev,
            Decoded(
                "meter",
                "m-1",
                "telemetry",
                T0 + i * 1000,
                seq=i,
                fields={"energy_kwh": 100.0 + i, "power_w": float(i % 10)},
            ),
            T0,
        )
        for i in range(120)  # two minutes, one point a second
    ]
    rows.append(
        Accepted(
            dev,
            Decoded("meter", "m-1", "event", T0 + 5000, event="tamper", attrs={"reason": "cover"}),
            T0,
        )
    )
    store.write(rows, [])
    yield store, Queries(store.path)
    store.close()


def test_raw_points_paged(db):
    store, q = db
    dev = store.devices["m-1"].id
    page = q.readings(
        dev,
        "power_w",
        since=T0,
        until=T0 + 200_000,
        every_ms=None,
        counter=False,
        limit=50,
        cursor=None,
    )
    assert len(page.items) == 50
    assert page.items[0] == {"ts": T0, "value": 0.0}
    seen = list(page.items)
    while page.next_cursor:
        page = q.readings(
            dev,
            "power_w",
            since=T0,
            until=T0 + 200_000,
            every_ms=None,
            counter=False,
            limit=50,
            cursor=page.next_cursor,
        )
        seen += page.items
    assert [p["ts"] for p in seen] == [T0 + i * 1000 for i in range(120)]


def test_downsampled_mean_for_gauges_last_for_counters(db):
    store, q = db
    dev = store.devices["m-1"].id
    gauge = q.readings(
        dev,
        "power_w",
        since=T0,
        until=T0 + 200_000,
        every_ms=60_000,
        counter=False,
        limit=100,
        cursor=None,
    )
    assert T0 % 60_000 == 0  # two whole minutes: two buckets
    assert [p["ts"] for p in gauge.items] == [T0, T0 + 60_000]
    first = gauge.items[0]
    start = first["ts"]
    expected = [float(i % 10) for i in range(120) if start <= T0 + i * 1000 < start + 60_000]
    assert first["value"] == pytest.approx(sum(expected) / len(expected))
    counter = q.readings(
        dev,
        "energy_kwh",
        since=T0,
        until=T0 + 200_000,
        every_ms=60_000,
        counter=True,
        limit=100,
        cursor=None,
    )
    last_in_first = max(100.0 + i for i in range(120) if start <= T0 + i * 1000 < start + 60_000)
    assert counter.items[0]["value"] == last_in_first
    # paging the downsampled series yields the same buckets
    page = q.readings(
        dev,
        "power_w",
        since=T0,
        until=T0 + 200_000,
        every_ms=60_000,
        counter=False,
        limit=1,
        cursor=None,
    )
    got = list(page.items)
    while page.next_cursor:
        page = q.readings(
            dev,
            "power_w",
            since=T0,
            until=T0 + 200_000,
            every_ms=60_000,
            counter=False,
            limit=1,
            cursor=page.next_cursor,
        )
        got += page.items
    assert got == gauge.items


def test_bad_parameters(db):
    store, q = db
    dev = store.devices["m-1"].id
    with pytest.raises(QueryError):
        q.readings(
            dev,
            "power_w); drop table journal; --",
            since=0,
            until=1,
            every_ms=None,
            counter=False,
            limit=10,
            cursor=None,
        )
    with pytest.raises(QueryError):
        q.readings(
            dev, "power_w", since=0, until=1, every_ms=None, counter=False, limit=0, cursor=None
        )
    with pytest.raises(QueryError):
        q.readings(
            dev,
            "power_w",
            since=0,
            until=1,
            every_ms=None,
            counter=False,
            limit=10,
            cursor="garbage",
        )


def test_events(db):
    _, q = db
    page = q.events(None, since=0, until=T0 + 10**9, limit=10, cursor=None)
    assert [(e["event"], e["attrs"]) for e in page.items] == [("tamper", {"reason": "cover"})]
    assert q.events([], since=0, until=T0 + 10**9, limit=10, cursor=None).items == []
