"""Unlock latency: REST call -> signed command -> door ack -> REST answer, under concurrency.

Starts a private Mosquitto, the gateway (``courtyard serve`` as a child process) and door
stubs (firmware_stubs, in a process of their own), then fires ``--residents`` concurrent
residents, each unlocking its building's entrance once per round, for ``--rounds`` rounds;
prints p50/p99/max of the latency seen by the client and of the ``latency_ms`` the gateway
reports. Then stops a door and measures how fast ``503`` (door offline) comes back.

    .venv/bin/python bench/unlock.py [--residents 50] [--rounds 20] [--doors 1] [--rate 5000]

``bench(quick)`` (for ``make bench``) runs it with 50 residents and 5,000 readings/s of
background telemetry flooding the same broker (1,000 meters, QoS 1), as the targets ask.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.latency import BACKGROUND_RATE, background, finish, journal_rate
from firmware_stubs.door import DoorController
from tests.support.servers import GatewayProcess, Mosquitto

JWT_SECRET = "bench-resident-secret-0123456789abcdef"
COMMANDS = """
[commands]
timeout_s = 5
validity_s = 5
rate_per_minute_resident = 100000
rate_per_minute_door = 1000000
burst = 1000
"""


@dataclass
class Results:
    floor_ms: list[float]
    client_ms: list[float]
    server_ms: list[float]
    failures: list[float]
    offline_ms: list[float]
    background_per_s: float

    def describe(self) -> str:
        return "\n".join(
            [
                f"{len(self.failures)} failures {sorted(set(self.failures))};"
                f" background {self.background_per_s:,.0f} readings/s journaled",
                summary("GET /healthz (HTTP floor)", self.floor_ms),
                summary("client (HTTP round trip)", self.client_ms),
                summary("gateway latency_ms     ", self.server_ms),
                summary("door offline -> 503    ", self.offline_ms),
            ]
        )


def registry(doors: int) -> str:
    out = '[[communities]]\nid = "c1"\n'
    for i in range(1, doors + 1):
        out += f'[[buildings]]\nid = "b{i}"\ncommunity = "c1"\n'
    for i in range(1, doors + 1):
        out += (
            f'[[devices]]\nid = "b{i}-entrance"\ncommunity = "c1"\nclass = "access"\n'
            f'building = "b{i}"\nsecret = "{i:02x}' + "ab" * 31 + '"\n'
        )
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} p50={pct(values, 0.5):.1f} ms p99={pct(values, 0.99):.1f} ms"
        f" max={max(values):.1f} ms mean={statistics.fmean(values):.1f} ms"
    )


async def fire(api: str, tokens: list[tuple[str, str]], rounds: int) -> tuple[list[float], ...]:
    """Each round, every ``(token, door)`` at the same instant, one keep-alive connection
    each (aiohttp: httpx's pool costs ~4 ms of client CPU per request at 50 connections,
    which would be measured as gateway latency)."""
    client_ms: list[float] = []
    server_ms: list[float] = []
    failures: list[float] = []
    connector = aiohttp.TCPConnector(limit=len(tokens))
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(api, connector=connector, timeout=timeout) as http:

        async def one(token: str, door: str) -> None:
            t0 = time.perf_counter()
            if door == "healthz":  # the HTTP floor: same concurrency, no command
                async with http.get("/healthz") as r:
                    await r.read()
                client_ms.append((time.perf_counter() - t0) * 1000)
                return
            async with http.post(
                f"/api/v1/doors/{door}/unlock",
                headers={"Authorization": f"Bearer {token}"},
                json={"seconds": 1},
            ) as r:
                body = await r.json()
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status == 200:
                client_ms.append(elapsed)
                server_ms.append(body["latency_ms"])
            else:
                failures.append(r.status)

        await one(*tokens[0])  # warm-up
        client_ms.clear()
        server_ms.clear()
        for _ in range(rounds):
            await asyncio.gather(*(one(t, d) for t, d in tokens))
    return client_ms, server_ms, failures


async def offline_503(api: str, token: str, door: str, n: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession(api, timeout=aiohttp.ClientTimeout(total=5)) as http:
        for _ in range(n):
            t0 = time.perf_counter()
            async with http.post(
                f"/api/v1/doors/{door}/unlock", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                text = await r.text()
            out.append((time.perf_counter() - t0) * 1000)
            assert r.status == 503, text
    return out


def run_doors(port: int, count: int) -> None:
    """The door stubs, until stdin closes (a clean stop: retained offline status)."""
    doors = [
        DoorController(
            f"b{i}-entrance",
            building=f"b{i}",
            secret=f"{i:02x}" + "ab" * 31,
            port=port,
            mean_access_s=1e9,
            mean_exit_s=1e9,
            mean_intercom_s=1e9,
        )
        for i in range(1, count + 1)
    ]
    for d in doors:
        d.start()
    sys.stdin.read()
    for d in doors:
        d.stop()


def measure(residents: int, rounds: int, doors: int, rate: int, offline: int = 200) -> Results:
    """One run: private broker, gateway and door stubs; ``rate`` readings/s of background
    flood on the same broker (0: none) while the residents unlock; then the doors stop and
    ``offline`` unlocks measure the 503."""
    with tempfile.TemporaryDirectory(prefix="courtyard-unlock-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker")
        broker.start()
        gw = GatewayProcess(
            work / "gw", mqtt_url=broker.url, registry=registry(doors), extra=COMMANDS
        )
        cfg = (gw.dir / "courtyard.toml").read_text()
        (gw.dir / "courtyard.toml").write_text(
            cfg.replace("[auth]\n", f'[auth]\njwt_secret = "{JWT_SECRET}"\n')
        )
        # the doors run in their own process, as real firmware would (not in the load generator)
        door_proc = subprocess.Popen(
            [sys.executable, __file__, "doors", "--port", str(broker.port), "--doors", str(doors)],
            stdin=subprocess.PIPE,
        )
        flood: subprocess.Popen[str] | None = None
        try:
            gw.start()
            ids = [f"b{i}-entrance" for i in range(1, doors + 1)]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(gw.get(f"/api/v1/devices/{d}").json()["online"] for d in ids):
                    break
                time.sleep(0.1)
            exp = int(time.time()) + 3600
            tokens = []
            for r in range(residents):
                b = r % doors + 1
                claims = {"sub": f"r-{r}", "community": "c1", "building": f"b{b}", "exp": exp}
                tokens.append((jwt.encode(claims, JWT_SECRET, algorithm="HS256"), f"b{b}-entrance"))
            achieved = 0.0
            if rate > 0:
                # enough readings to outlast the measurement; killed when it is over
                flood = background(broker.port, rate, 120 + rounds * 2)
                time.sleep(3)  # steady load (the 1,000 flood devices discovered) first
                achieved = journal_rate(gw.db, 2.0)
            floor, _, _ = asyncio.run(fire(gw.api, [(t, "healthz") for t, _ in tokens], rounds))
            client_ms, server_ms, failures = asyncio.run(fire(gw.api, tokens, rounds))
            if rate > 0:
                achieved = (achieved + journal_rate(gw.db, 1.0)) / 2
            finish(flood)
            flood = None
            door_proc.stdin.close()  # type: ignore[union-attr]
            door_proc.wait(20)
            while gw.get(f"/api/v1/devices/{ids[0]}").json()["online"] is not False:
                time.sleep(0.05)
            off = asyncio.run(offline_503(gw.api, tokens[0][0], ids[0], offline))
            return Results(floor, client_ms, server_ms, failures, off, achieved)
        finally:
            finish(flood)
            if door_proc.poll() is None:
                door_proc.kill()
            gw.stop()
            broker.stop()


def bench(quick: bool) -> dict[str, list[float]]:
    """``latency.unlock_{p50,p99,max}_ms`` (at the client, 50 concurrent residents, 5,000
    readings/s of background load) and ``latency.door_offline_503_p99_ms``, one value per run
    (quick: 1 run of 10 rounds, full: 3 runs of 20)."""
    names = ("unlock_p50_ms", "unlock_p99_ms", "unlock_max_ms", "door_offline_503_p99_ms")
    out: dict[str, list[float]] = {f"latency.{n}": [] for n in names}
    for _ in range(1 if quick else 3):
        r = measure(50, 10 if quick else 20, 1, BACKGROUND_RATE, 100 if quick else 200)
        print(f"[unlock] {r.describe()}", file=sys.stderr, flush=True)
        if r.failures or not r.client_ms:
            raise RuntimeError(f"unlock failures: {sorted(set(r.failures))}")
        values = (
            pct(r.client_ms, 0.5),
            pct(r.client_ms, 0.99),
            max(r.client_ms),
            pct(r.offline_ms, 0.99),
        )
        for n, v in zip(names, values, strict=True):
            out[f"latency.{n}"].append(round(v, 1))
    return out


def main() -> None:
    if sys.argv[1:2] == ["doors"]:
        d = argparse.ArgumentParser()
        d.add_argument("--port", type=int)
        d.add_argument("--doors", type=int)
        dargs = d.parse_args(sys.argv[2:])
        run_doors(dargs.port, dargs.doors)
        return
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--residents", type=int, default=50)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--doors", type=int, default=1)
    p.add_argument("--rate", type=int, default=0, help="background readings/s (0: none)")
    args = p.parse_args()
    print(measure(args.residents, args.rounds, args.doors, args.rate).describe())


if __name__ == "__main__":
    main()
