"""Where the ingest's time goes: the gateway's own per-message work, without MQTT or sockets.

The messages of the ingest benchmark (1,000 meters, 4 fields) are handed to the gateway's
``Ingest.on_batch`` in batches the size of one socket read, with the real journal (SQLite
file), the rules engine and the command service listening, exactly as ``courtyard serve``
wires them. Each stage is timed by wrapping it; the wrappers cost ~0.3 us per call, so the
total runs a little above an unwrapped run.

    .venv/bin/python bench/ingest_cpu.py [-n 100000] [--batch 600] [--mixed] [--profile]

``--mixed``: every other message is a device of another ecosystem instead (a Zigbee2MQTT
plug, a Tasmota plug's ``SENSOR``, a Shelly Pro 3EM's ``em:0`` status, 1,000 devices each,
unbound: discovered), routed to its adapter and validated like a native message.

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

import orjson

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


ADAPTERS_TOML = """
[[adapters]]
kind = "zigbee2mqtt"
community = "c1"
[[adapters]]
kind = "tasmota"
community = "c1"
[[adapters]]
kind = "shelly"
community = "c1"
"""


def adapter_message(i: int) -> tuple[str, bytes]:
    """The ``i``-th message of a stream of Zigbee2MQTT, Tasmota and Shelly meters, in their
    vendors' formats (the shapes of tests/unit/devices/adapters/fixtures.py)."""
    device, kind = (i // 3) % 1000, i % 3
    watts = 100 + i % 900
    if kind == 0:
        body = {
            "state": "ON",
            "power": watts,
            "energy": 1.5 + i / 1e5,
            "voltage": 230,
            "current": round(watts / 230, 3),
            "linkquality": 120,
        }
        return f"zigbee2mqtt/plug {device}", orjson.dumps(body)
    if kind == 1:
        energy = {
            "Total": 6.294 + i / 1e5,
            "Yesterday": 5.34,
            "Today": 0.954,
            "Power": watts,
            "ApparentPower": watts + 15,
            "ReactivePower": 28,
            "Factor": 0.99,
            "Voltage": 227,
            "Current": round(watts / 227, 3),
        }
        return f"tele/pow-{device}/SENSOR", orjson.dumps(
            {"Time": "2025-01-01T00:00:00", "ENERGY": energy}
        )
    em: dict[str, Any] = {"id": 0, "total_act_power": watts * 3, "total_current": 4.2}
    for phase in "abc":
        em |= {f"{phase}_act_power": watts, f"{phase}_voltage": 233.7, f"{phase}_current": 1.4}
    return f"shellypro3em-{device}/status/em:0", orjson.dumps(em)


async def run(n: int, batch: int, profile: bool, mixed: bool = False) -> dict[str, float]:
    """Microseconds of CPU per message: ``total`` and one entry per stage."""
    plan = FloodPlan(devices=1000, messages=n)
    now = int(time.time() * 1000)
    messages = []
    for i, (_, topic, payload, _) in enumerate(plan.messages_iter()):
        if mixed and i % 2:  # no device time in these: one receive ms each, none a repeat
            topic, payload = adapter_message(i // 2)
        messages.append(Received(topic, payload, 1, False, i % 65535 + 1, now + i))
    spent: Counter[str] = Counter()
    originals = [(cls, name, timed(spent, cls, name)) for cls, name in STAGES]
    try:
        wall, cpu, commits = await _drive(messages, batch, profile, mixed=mixed)
    finally:
        for cls, name, inner in originals:
            setattr(cls, name, inner)
    print(
        f"{n:,} {'mixed ' if mixed else ''}messages in {commits} commits: {n / wall:,.0f} msg/s,"
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
    messages: list[Received],
    batch: int,
    profile: bool,
    durability: str = "full",
    mixed: bool = False,
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, group commits) to ingest ``messages``, ``batch`` per read,
    on a fresh store with ``[store] durability`` (and ``[[adapters]]`` for a mixed stream)."""
    n = len(messages)
    with tempfile.TemporaryDirectory(prefix="courtyard-ingest-cpu-") as tmp:
        cfg = Path(tmp) / "courtyard.toml"
        cfg.write_text(
            f'[store]\npath = "{tmp}/courtyard.db"\ndurability = "{durability}"\n'
            '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n' + (ADAPTERS_TOML if mixed else "")
        )
        settings, registry = _load(str(cfg))
        gw = Gateway(settings, registry)
        gw.store.open()
        gw.audit.open()
        ingest = new_ingest(
            settings,
            gw.store,
            lambda _token, _ids: None,
            router=gw.router,
            adapter_devices=gw.adapter_devices,
        )
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
        # half native, half Zigbee2MQTT/Tasmota/Shelly: what adapters cost
        mixed = asyncio.run(run(20_000 if quick else 100_000, 600, False, mixed=True))
        out.setdefault("ingest.cpu_us_per_msg_mixed", []).append(round(mixed["total"], 2))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("-n", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=600, help="messages per socket read")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--mixed", action="store_true", help="half the stream from adapters")
    args = p.parse_args()
    asyncio.run(run(args.n, args.batch, args.profile, args.mixed))


if __name__ == "__main__":
    main()
