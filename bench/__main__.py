"""``make bench``: Courtyard against its references, side by side, in one run.

    make bench                 # the full run (100k messages, 3 rounds, 1k/10k/100k devices)
    BENCH_QUICK=1 make bench   # a quick run (20k messages, 1 round, 1k/10k devices)

Prints a table and writes bench/results.json: the machine, the versions of the servers, and for
every figure its median, min, max and runs. Ratios are taken per round (the reference and
Courtyard measured back to back on the same queue), then summarised.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ingest, scale
from tests.support.influx import VictoriaMetricsServer
from tests.support.servers import Mosquitto

QUICK = os.environ.get("BENCH_QUICK") == "1"
RESULTS = Path(__file__).resolve().parent / "results.json"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def debian_version(package: str) -> str:
    """The installed Debian package's version (for servers whose binary prints none)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "not installed"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": os.getloadavg(),
    }


def run_ingest(work: Path, messages: int, rounds: int) -> dict[str, list[float]]:
    try:
        from bench import nodered
    except ImportError:
        nodered = None  # type: ignore[assignment]
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "mosquitto_sub",
            "gateway",
            "diy_paho",
            "node_red",
            "node_red_lost",
            "ratio_to_mosquitto_sub",
            "ratio_to_diy_paho",
            "ratio_to_node_red",
        )
    }
    for r in range(rounds):
        rw = work / f"round-{r}"
        broker = Mosquitto(rw / "broker")
        broker.start()
        sinks = {
            name: VictoriaMetricsServer(rw / f"vm-{name}")
            for name in ("gateway", "gateway_normal", "diy", "nodered")
        }
        for vm in sinks.values():
            vm.start()
        try:
            ids = [*ingest.SESSIONS.values(), "bench-nodered"]
            ingest.make_sessions(broker.port, ids)
            log(f"round {r + 1}/{rounds}: queueing {messages} messages")
            ingest.queue(broker.port, messages, r)
            ref = ingest.drain_mosquitto_sub(broker.port, messages)
            log(f"  mosquitto_sub  {ref:10,.0f} msg/s")
            servers = ingest.Servers(broker, sinks["gateway"])
            idle = ingest.start_cost(rw / "gateway-start", servers)
            # Each drain also with [store] durability = "normal" (no sync per commit), back to
            # back with the default, which goes first in even rounds and second in odd ones.
            normal_servers = ingest.Servers(broker, sinks["gateway_normal"])
            rates: dict[str, float] = {}
            cpu = ""
            for durability in ("full", "normal") if r % 2 == 0 else ("normal", "full"):
                drained = ingest.drain_gateway(
                    rw / f"gateway-{durability}",
                    servers if durability == "full" else normal_servers,
                    messages,
                    "bench",
                    idle,
                    durability,
                )
                vm = sinks["gateway" if durability == "full" else "gateway_normal"]
                stored = ingest.stored(vm, messages)
                if stored != messages:
                    raise SystemExit(f"the gateway ({durability}) stored {stored} of {messages}")
                rates[durability] = drained.rate
                if durability == "full":
                    cpu = ", ".join(f"{name} {us:.1f}" for name, us in drained.cpu_us.items())
                    for name, us in drained.cpu_us.items():
                        out.setdefault(f"gateway_cpu_us_{name}", []).append(us)
            gw = rates["full"]
            log(f"  gateway        {gw:10,.0f} msg/s (all {messages} points in InfluxDB)")
            log(f"    CPU us per message: {cpu}")
            log(f"    durability normal {rates['normal']:10,.0f} msg/s")
            out.setdefault("gateway_normal", []).append(rates["normal"])
            out.setdefault("durable_ratio_full_to_normal", []).append(gw / rates["normal"])
            for durability in ("full", "normal") if r % 2 == 0 else ("normal", "full"):
                rates[durability] = ingest.drain_journal_only(
                    rw / f"journal-only-{durability}", servers, messages, durability
                )
            journal = rates["full"]
            log(f"  journal only   {journal:10,.0f} msg/s (the gateway without InfluxDB)")
            log(f"    durability normal {rates['normal']:10,.0f} msg/s")
            out.setdefault("gateway_journal_only", []).append(journal)
            out.setdefault("ratio_journal_only_to_mosquitto_sub", []).append(journal / ref)
            out.setdefault("gateway_journal_only_normal", []).append(rates["normal"])
            out.setdefault("durable_ratio_journal_only_full_to_normal", []).append(
                journal / rates["normal"]
            )
            diy = ingest.drain_diy(broker.port, messages, sinks["diy"].url, "bench")
            diy_stored = ingest.stored(sinks["diy"], messages)
            log(f"  paho+influx    {diy:10,.0f} msg/s ({diy_stored} points stored)")
            out["mosquitto_sub"].append(ref)
            out["gateway"].append(gw)
            out["diy_paho"].append(diy)
            out["ratio_to_mosquitto_sub"].append(gw / ref)
            out["ratio_to_diy_paho"].append(gw / diy)
            if nodered is not None:
                res = nodered.drain_nodered(
                    broker.port,
                    "bench-nodered",
                    messages,
                    sinks["nodered"].url,
                    rw / "nodered",
                    lambda vm=sinks["nodered"]: vm.count("meter_power_w"),
                )
                log(f"  node-red       {res['rate']:10,.0f} msg/s ({res['lost']} lost)")
                out["node_red"].append(res["rate"])
                out["node_red_lost"].append(float(res["lost"]))
                out["ratio_to_node_red"].append(gw / res["rate"] if res["rate"] else 0.0)
        finally:
            for vm in sinks.values():
                vm.stop()
            broker.stop()
    return {k: v for k, v in out.items() if v}


def run_optional(name: str, fn: Callable[[], dict[str, list[float]]]) -> dict[str, list[float]]:
    try:
        return fn()
    except Exception as exc:  # a missing optional part is reported, not fatal
        log(f"{name}: not measured: {exc!r}")
        return {}


def main() -> None:
    messages = 20_000 if QUICK else 100_000
    rounds = 1 if QUICK else 3
    sizes = (1_000, 10_000) if QUICK else (1_000, 10_000, 100_000)
    work = Path(tempfile.mkdtemp(prefix="courtyard-bench-"))
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": QUICK,
        "machine": machine(),
        "versions": {
            "mosquitto": version(["mosquitto", "-h"]),
            "influxd": version(["influxd", "version"]),
            "victoria-metrics": debian_version("victoria-metrics"),
            "node": version(["node", "--version"]),
        },
        "figures": {},
    }
    figures: dict[str, list[float]] = {}
    for key, values in run_ingest(work, messages, rounds).items():
        rate = key in (
            "mosquitto_sub",
            "gateway",
            "gateway_normal",
            "gateway_journal_only",
            "gateway_journal_only_normal",
            "diy_paho",
            "node_red",
        )
        figures[f"ingest.{key}_msgs_per_s" if rate else f"ingest.{key}"] = values
    try:  # installed by the ingest run
        from bench import nodered

        results["versions"]["node-red"] = nodered.installed_versions()
    except ImportError:
        results["versions"]["node-red"] = "not measured"
    log("scale: registering devices")
    sc = scale.run(work / "scale", sizes)
    figures["scale.bytes_per_device"] = [sc["bytes_per_device"]]
    for p in sc["points"]:
        figures[f"scale.rss_mib_{p['devices']}"] = [p["rss_bytes"] / 2**20]
        figures[f"scale.startup_s_{p['devices']}"] = [p["startup_s"]]
    for module in ("ingest_cpu", "durable", "steady", "alert_latency", "unlock", "latency"):
        figures.update(run_optional(module, lambda m=module: _latency(m, QUICK)))
    results["figures"] = {k: summary(v) for k, v in figures.items()}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'figure':40} {'median':>14} {'min':>14} {'max':>14} runs")
    for key, s in results["figures"].items():
        print(f"{key:40} {s['median']:14,.2f} {s['min']:14,.2f} {s['max']:14,.2f} {s['runs']:4}")
    print(f"\nwritten to {RESULTS}")


def _latency(module: str, quick: bool) -> dict[str, list[float]]:
    import importlib

    mod = importlib.import_module(f"bench.{module}")
    result: dict[str, list[float]] = mod.bench(quick=quick)
    return result


if __name__ == "__main__":
    main()
