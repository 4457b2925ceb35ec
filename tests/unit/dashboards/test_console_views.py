"""The arithmetic behind the console's charts, on canned query answers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gateway.console import views
from gateway.store.journal import DeviceState
from gateway.store.queries import Page

DAY = views.DAY_MS
NOW = 20_000 * DAY + 15 * 3_600_000  # 15:00 UTC on some day


class FakeQueries:
    """Readings of one counter: (ts, value) pairs, downsampled like the store (last per day)."""

    def __init__(self, points: list[tuple[int, float]]) -> None:
        self.points = points

    def readings(
        self,
        _id: int,
        _field: str,
        *,
        since: int,
        until: int,
        every_ms: int | None,
        counter: bool,
        limit: int,
        cursor: str | None,
    ) -> Page:
        pts = [(t, v) for t, v in self.points if since <= t <= until]
        if every_ms is None:
            return Page([{"ts": t, "value": v} for t, v in pts][:limit], None)
        last: dict[int, float] = {}
        for t, v in pts:
            last[t // every_ms * every_ms] = v
        return Page([{"ts": b, "value": v} for b, v in sorted(last.items())][:limit], None)


def gateway(points: list[tuple[int, float]]) -> Any:
    return SimpleNamespace(now_ms=lambda: NOW, queries=FakeQueries(points))


def test_daily_use_is_the_difference_of_day_ends() -> None:
    today = NOW // DAY * DAY
    points = [
        (today - 3 * DAY + 1000, 100.0),  # before the chart: the base of its first day
        (today - 2 * DAY + 1000, 104.0),
        (today - 2 * DAY + 50_000, 105.5),
        (today - DAY + 1000, 106.0),
        (today + 1000, 106.0),
        (today + 2000, 109.25),
    ]
    st = DeviceState(1, "m-1", "c1", "meter")
    bars = views.daily_consumption(gateway(points), st, "energy_kwh", days=3)
    assert [(b.label, b.value) for b in bars] == [
        (views.datetime.fromtimestamp((today - 2 * DAY) / 1000, views.UTC).strftime("%m-%d"), 5.5),
        (views.datetime.fromtimestamp((today - DAY) / 1000, views.UTC).strftime("%m-%d"), 0.5),
        (views.datetime.fromtimestamp(today / 1000, views.UTC).strftime("%m-%d"), 3.25),
    ]


def test_first_day_without_history_counts_from_its_first_reading() -> None:
    today = NOW // DAY * DAY
    points = [(today + 1000, 50.0), (today + 9000, 52.5)]
    bars = views.daily_consumption(gateway(points), DeviceState(1, "m", "c1", "meter"), "e", 2)
    assert [b.value for b in bars] == [0.0, 2.5]


def test_a_counter_reset_is_not_negative_use() -> None:
    today = NOW // DAY * DAY
    points = [(today - DAY + 1, 900.0), (today + 1, 3.0)]
    bars = views.daily_consumption(gateway(points), DeviceState(1, "m", "c1", "meter"), "e", 2)
    assert [b.value for b in bars] == [0.0, 0.0]


def test_age() -> None:
    assert views.age(None, NOW) == "never"
    assert views.age(NOW - 40_000, NOW) == "40 s"
    assert views.age(NOW - 12 * 60_000, NOW) == "12 min"
    assert views.age(NOW - (3 * 86400 + 4 * 3600) * 1000, NOW) == "3 d 4 h"
