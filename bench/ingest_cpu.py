"""Where the ingest's time goes: the gateway's own per-message work, without MQTT or sockets.

The messages of the ingest benchmark (1,000 meters, 4 fields) are handed to the gateway's
``Ingest.on_batch`` in batches the size of one socket read, with the real journal (SQLite
file), the rules engine and the command service listening, exactly as ``courtyard serve``
wires them. Each stage is timed by wrapping it; the wrappers cost ~0.3 us per call, so the
total runs a little above an unwrapped run.

    .venv/bin/python bench/ingest_cpu.py [-n 100000] [--batch 600] [--profile]

``--profile`` adds cProfile's top entries by own time (which inflate Python-heavy code).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_stubs.flood import FloodPlan
from gateway.cli import _load
from gateway.commands import CommandService
from gateway.ingest import Ingest
from gateway.mqtt.codec import Received
from gateway.rules.service import Alerting
from gateway.service import Gateway, new_ingest
from gateway.store.journal import Store

STAGES: list[tuple[type, str]] = [
    (Ingest, "_decode"),
    (Store, "commit"),
    (Store, "apply"),
    (Alerting, "on_commit"),
    (CommandService, "on_commit"),
]


def timed(spent: Counter[str], cls: type, name: str) -> Callable[..., Any]:
    """Wrap ``cls.name`` to add its time to ``spent``; returns the original."""
    inner: Callable[..., Any] = getattr(cls, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[f"{cls.__name__}.{name}"] += time.perf_counter() - t0

    setattr(cls, name, wrapper)
    return inner


async def run(n: int, batch: int, profile: bool) -> dict[str, float]:
    """Microseconds of CPU per message: ``total`` and one entry per stage."""
    plan = FloodPlan(devices=1000, messages=n)
    now = int(time.time() * 1000)
    messages = [
        Received(topic, payload, 1, False, i % 65535 + 1, now)
        for i, (_, topic, payload, _) in enumerate(plan.messages_iter())
    ]
    spent: Counter[str] = Counter()
    originals = [(cls, name, timed(spent, cls, name)) for cls, name in STAGES]
    try:
        wall, cpu, commits = await _drive(messages, batch, profile)
    finally:
        for cls, name, inner in originals:
            setattr(cls, name, inner)
    print(
        f"{n:,} messages in {commits} commits: {n / wall:,.0f} msg/s,"
        f" {cpu / n * 1e6:.1f} us of CPU per message"
    )
    out = {"total": cpu / n * 1e6}
    for stage, seconds in spent.most_common():
        out[stage] = seconds / n * 1e6
    out["rest"] = (cpu - sum(spent.values())) / n * 1e6
    for stage, us in out.items():
        if stage != "total":
            print(
                f"  {stage if stage != 'rest' else 'the rest (on_batch, loop)':28} {us:6.2f} us/msg"
            )
    return out


async def _drive(
    messages: list[Received], batch: int, profile: bool, durability: str = "full"
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, group commits) to ingest ``messages``, ``batch`` per read,
    on a fresh store with ``[store] durability``."""
    n = len(messages)
    with tempfile.TemporaryDirectory(prefix="courtyard-ingest-cpu-") as tmp:
        cfg = Path(tmp) / "courtyard.toml"
        cfg.write_text(
            f'[store]\npath = "{tmp}/courtyard.db"\ndurability = "{durability}"\n'
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        )
        settings, registry = _load(str(cfg))
        gw = Gateway(settings, registry)
        gw.store.open()
        gw.audit.open()
        ingest = new_ingest(settings, gw.store, lambda _token, _ids: None)
        alerting = Alerting(settings, gw.registry, gw.store)
        alerting.start()
        ingest.listeners += [gw.commands.on_commit, alerting.on_commit]
        prof = cProfile.Profile() if profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        for i in range(0, n, batch):
            ingest.on_batch(messages[i : i + batch], "connection")
            await asyncio.sleep(0)
        ingest.flush()
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        commits = gw.store.commits_total
        await alerting.stop()
        gw.audit.close()
        gw.store.close()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return wall, cpu, commits


def bench(quick: bool) -> dict[str, list[float]]:
    """``ingest.cpu_us_per_msg`` and ``ingest.cpu_us.<stage>``: median of 3 runs (1 quick)."""
    out: dict[str, list[float]] = {}
    for _ in range(1 if quick else 3):
        for stage, us in asyncio.run(run(20_000 if quick else 100_000, 600, False)).items():
            key = "ingest.cpu_us_per_msg" if stage == "total" else f"ingest.cpu_us.{stage}"
            out.setdefault(key, []).append(round(us, 2))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("-n", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=600, help="messages per socket read")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    asyncio.run(run(args.n, args.batch, args.profile))


if __name__ == "__main__":
    main()
