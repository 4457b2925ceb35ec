"""What a durable acknowledgement costs per group commit: the ingest's commit with
``[store] durability = "full"`` (the WAL synced before the commit returns) against ``"normal"``.

Two journals side by side in one folder (so on one disk), the messages of the ingest benchmark
(1,000 meters, 4 fields) decoded by the gateway's ``Ingest`` and committed by its ``flush()``
(commit, state, acknowledgements), one journal then the other, the same messages to each. Timed
in wall-clock time: a sync is time the event loop waits, not CPU. Two commit sizes: a steady
stream's (``telemetry_commit_interval_ms`` at a few thousand readings per second) and a backlog's
(``commit_max_messages``).

    .venv/bin/python -m bench.durable [--commits 40] [--sizes 100,5000] [-n 50000] [--pairs 5]

Then the whole ingest in one process with each setting, as ``bench/ingest_cpu.py`` drives it
(``ingest.durable_ratio_full_to_normal_in_process``). The drains of ``courtyard serve`` from a
broker with each setting are in ``make bench``'s ingest run
(``ingest.durable_ratio_full_to_normal``, ``ingest.durable_ratio_journal_only_full_to_normal``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_cpu import _drive
from firmware_stubs.flood import FloodPlan
from gateway.ingest import Ingest
from gateway.mqtt.codec import Received
from gateway.store.journal import Store
from gateway.store.schema import Durability

SIZES = (100, 5000)


def _ingest(path: str, durability: Durability, devices: list[str]) -> Ingest:
    store = Store(path, durability=durability)
    store.open()
    store.register((d, "c1", "meter", "") for d in devices)
    return Ingest(store, prefix="community", acker=lambda _token, _ids: None, commit_max=10**9)


async def run(commits: int, sizes: tuple[int, ...]) -> dict[str, float]:
    """Median microseconds per commit of each size, with each durability, and the difference
    (``sync_us_per_commit_of_<size>``, the median of the per-commit differences)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="courtyard-durable-") as tmp:
        for size in sizes:
            plan = FloodPlan(devices=1000, messages=size * commits, start_seq=size)
            now = int(time.time() * 1000)
            messages = [
                Received(topic, payload, 1, False, i % 65535 + 1, now)
                for i, (_, topic, payload, _) in enumerate(plan.messages_iter())
            ]
            devices = [plan.device_id(i) for i in range(plan.devices)]
            ingests = {d: _ingest(f"{tmp}/{d}-{size}.db", d, devices) for d in ("full", "normal")}
            spent: dict[str, list[float]] = {"full": [], "normal": []}
            try:
                for n, i in enumerate(range(0, len(messages), size)):
                    batch = messages[i : i + size]
                    # alternate which goes first, so that neither always follows the other's sync
                    for d in ("full", "normal") if n % 2 == 0 else ("normal", "full"):
                        ingests[d].on_batch(batch, "connection")
                        t0 = time.perf_counter()
                        ingests[d].flush()
                        spent[d].append(time.perf_counter() - t0)
            finally:
                for ingest in ingests.values():
                    ingest.store.close()
            full, normal = spent["full"], spent["normal"]
            out[f"commit_us_full_of_{size}"] = statistics.median(full) * 1e6
            out[f"commit_us_normal_of_{size}"] = statistics.median(normal) * 1e6
            out[f"sync_us_per_commit_of_{size}"] = (
                statistics.median(f - n for f, n in zip(full, normal, strict=True)) * 1e6
            )
            print(
                f"commits of {size:5} messages: full {out[f'commit_us_full_of_{size}']:8,.0f} us,"
                f" normal {out[f'commit_us_normal_of_{size}']:8,.0f} us,"
                f" the sync {out[f'sync_us_per_commit_of_{size}']:8,.0f} us"
                f" (median of {len(full)})"
            )
    return out


async def drain(messages: int, pairs: int) -> dict[str, float]:
    """The whole ingest in one process (``bench/ingest_cpu.py``'s drive: decode, journal,
    rules, commands; no MQTT, no other process), ``messages`` fed as a backlog is, on a fresh
    store with each durability, ``pairs`` times, alternating which goes first. Rates are
    ``messages`` over wall-clock time; the ratio is the median of the pairs' ratios: one
    process on a busy machine compares better than two drains of a shared broker."""
    plan = FloodPlan(devices=1000, messages=messages)
    now = int(time.time() * 1000)
    received = [
        Received(topic, payload, 1, False, i % 65535 + 1, now)
        for i, (_, topic, payload, _) in enumerate(plan.messages_iter())
    ]
    rates: dict[str, list[float]] = {"full": [], "normal": []}
    commits = 0
    for n in range(pairs):
        for d in ("full", "normal") if n % 2 == 0 else ("normal", "full"):
            wall, _cpu, commits = await _drive(received, 600, False, d)
            rates[d].append(messages / wall)
    ratios = [f / n for f, n in zip(rates["full"], rates["normal"], strict=True)]
    out = {
        "in_process_full_msgs_per_s": statistics.median(rates["full"]),
        "in_process_normal_msgs_per_s": statistics.median(rates["normal"]),
        "durable_ratio_full_to_normal_in_process": statistics.median(ratios),
    }
    print(
        f"ingest of {messages:,} messages ({commits} commits): full"
        f" {out['in_process_full_msgs_per_s']:,.0f} msg/s,"
        f" normal {out['in_process_normal_msgs_per_s']:,.0f} msg/s,"
        f" ratio {out['durable_ratio_full_to_normal_in_process']:.3f}"
        f" (median of {pairs} pairs, {min(ratios):.3f}-{max(ratios):.3f})"
    )
    return out


def bench(quick: bool) -> dict[str, list[float]]:
    """``ingest.commit_us_{full,normal}_of_<size>``, ``ingest.sync_us_per_commit_of_<size>``
    and ``ingest.durable_ratio_full_to_normal_in_process``: one value per run (3 runs, 1 quick),
    each the median of its commits or pairs."""
    out: dict[str, list[float]] = {}
    for _ in range(1 if quick else 3):
        figures = asyncio.run(run(20 if quick else 40, SIZES))
        figures |= asyncio.run(drain(20_000 if quick else 50_000, 5))
        for key, value in figures.items():
            out.setdefault(f"ingest.{key}", []).append(round(value, 3))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--commits", type=int, default=40, help="commits of each size and setting")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="messages per commit")
    p.add_argument("-n", type=int, default=50_000, help="messages of the in-process drain")
    p.add_argument("--pairs", type=int, default=5, help="in-process drains with each setting")
    args = p.parse_args()
    asyncio.run(run(args.commits, tuple(int(s) for s in args.sizes.split(","))))
    asyncio.run(drain(args.n, args.pairs))


if __name__ == "__main__":
    main()
