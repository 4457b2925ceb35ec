"""The flood's message plan: exact counts, verbatim duplicates, unique and recent timestamps."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from firmware_stubs.flood import make_plan

NOW = 1_800_000_000_000


def collect(devices: int, messages: int, ratio: float, **kw: object) -> list:
    plan = make_plan(devices, messages, duplicate_ratio=ratio, now_ms=NOW, **kw)  # type: ignore[arg-type]
    return list(plan.messages_iter())


@pytest.mark.parametrize(
    ("devices", "messages", "ratio"),
    [(10, 1000, 0.1), (7, 1000, 0.333), (1000, 100, 0.5), (3, 10, 0.0), (5, 50, 1.0)],
)
def test_counts_are_exact(devices: int, messages: int, ratio: float) -> None:
    out = collect(devices, messages, ratio)
    dups = [m for m in out if m[3]]
    assert len(out) - len(dups) == messages
    assert len(dups) == round(messages * ratio)
    assert len({payload for _, _, payload, _ in out}) == messages


def test_duplicates_repeat_an_earlier_message_verbatim() -> None:
    out = collect(20, 2000, 0.1)
    seen: set[tuple[str, bytes]] = set()
    for _, topic, payload, dup in out:
        if dup:
            assert (topic, payload) in seen
        else:
            assert (topic, payload) not in seen
            seen.add((topic, payload))


def test_payloads_are_meter_telemetry_with_unique_recent_ts() -> None:
    out = collect(50, 5000, 0.0)
    by_device: dict[str, list[dict]] = defaultdict(list)
    for d, topic, payload, _ in out:
        assert topic == f"community/c1/meter/m-{d:04d}/telemetry"
        body = json.loads(payload)
        assert set(body) == {"ts", "seq", "energy_kwh", "power_w", "voltage_v", "current_a"}
        by_device[topic].append(body)
    assert len(by_device) == 50
    for bodies in by_device.values():
        assert [b["seq"] for b in bodies] == list(range(len(bodies)))
        ts = [b["ts"] for b in bodies]
        assert ts == sorted(set(ts))
        assert all(NOW - 5 * 60_000 < t < NOW for t in ts)
        energy = [b["energy_kwh"] for b in bodies]
        assert energy == sorted(energy)
        assert all(200 < b["voltage_v"] < 240 for b in bodies)


def test_round_robin_order() -> None:
    out = collect(4, 12, 0.0)
    assert [d for d, *_ in out] == [0, 1, 2, 3] * 3


def test_many_messages_per_device_stay_within_a_few_minutes() -> None:
    plan = make_plan(2, 240_000, now_ms=NOW)  # 120k a device, 1 ms apart
    first_ts = plan.ts_base_ms
    last_ts = plan.ts_base_ms + (plan.per_device - 1) * plan.step_ms
    assert plan.step_ms == 1
    assert NOW - 5 * 60_000 < first_ts < last_ts < NOW


def test_start_seq_and_ts_base() -> None:
    out = collect(2, 4, 0.0, start_seq=100, ts_base_ms=1_000)
    bodies = [json.loads(p) for _, _, p, _ in out]
    assert [(b["seq"], b["ts"]) for b in bodies] == [
        (100, 1000),
        (100, 1000),
        (101, 2000),
        (101, 2000),
    ]


def test_device_ids_widen_past_ten_thousand() -> None:
    plan = make_plan(12_000, 1, now_ms=NOW)
    assert plan.device_id(7) == "m-00007"


def test_plan_is_deterministic() -> None:
    assert collect(10, 300, 0.2) == collect(10, 300, 0.2)
    counts = Counter(d for d, *_ in collect(10, 300, 0.2))
    assert sum(counts.values()) == 360


@pytest.mark.parametrize("bad", [{"devices": 0}, {"messages": -1}, {"duplicate_ratio": 1.5}])
def test_invalid_plans(bad: dict) -> None:
    args = {"devices": 1, "messages": 1, "duplicate_ratio": 0.0, **bad}
    with pytest.raises(ValueError):
        make_plan(args.pop("devices"), args.pop("messages"), **args)
