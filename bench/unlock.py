"""Unlock latency: REST call -> signed command -> door ack -> REST answer, under concurrency.

Starts a private Mosquitto, the gateway (``courtyard serve`` as a child process) and door
stubs (firmware_stubs, in this process), then fires ``--residents`` concurrent residents, each
unlocking its building's entrance once per round, for ``--rounds`` rounds; prints p50/p99/max
of the latency seen by the client and of the ``latency_ms`` the gateway reports. Then stops a
door and measures how fast ``503`` (door offline) comes back.

    .venv/bin/python bench/unlock.py [--residents 50] [--rounds 20] [--doors 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_stubs.door import DoorController
from tests.integration.servers import GatewayProcess, Mosquitto

JWT_SECRET = "bench-resident-secret-0123456789abcdef"
COMMANDS = """
[commands]
timeout_s = 5
validity_s = 5
rate_per_minute_resident = 100000
rate_per_minute_door = 1000000
burst = 1000
"""


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
    client_ms: list[float] = []
    server_ms: list[float] = []
    failures: list[float] = []
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=api, limits=limits, timeout=15) as http:

        async def one(token: str, door: str) -> None:
            t0 = time.perf_counter()
            if door == "healthz":  # the HTTP floor: same concurrency, no command
                r = await http.get("/healthz")
                client_ms.append((time.perf_counter() - t0) * 1000)
                return
            r = await http.post(
                f"/api/v1/doors/{door}/unlock",
                headers={"Authorization": f"Bearer {token}"},
                json={"seconds": 1},
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if r.status_code == 200:
                client_ms.append(elapsed)
                server_ms.append(r.json()["latency_ms"])
            else:
                failures.append(r.status_code)

        await one(*tokens[0])  # warm-up
        client_ms.clear()
        server_ms.clear()
        for _ in range(rounds):
            await asyncio.gather(*(one(t, d) for t, d in tokens))
    return client_ms, server_ms, failures


async def offline_503(api: str, token: str, door: str, n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=api, timeout=5) as http:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await http.post(
                f"/api/v1/doors/{door}/unlock", headers={"Authorization": f"Bearer {token}"}
            )
            out.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 503, r.text
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


def main() -> None:
    if sys.argv[1:2] == ["doors"]:
        d = argparse.ArgumentParser()
        d.add_argument("--port", type=int)
        d.add_argument("--doors", type=int)
        dargs = d.parse_args(sys.argv[2:])
        run_doors(dargs.port, dargs.doors)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--residents", type=int, default=50)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--doors", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="courtyard-unlock-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker")
        broker.start()
        gw = GatewayProcess(
            work / "gw", mqtt_url=broker.url, registry=registry(args.doors), extra=COMMANDS
        )
        cfg = (gw.dir / "courtyard.toml").read_text()
        (gw.dir / "courtyard.toml").write_text(
            cfg.replace("[auth]\n", f'[auth]\njwt_secret = "{JWT_SECRET}"\n')
        )
        # the doors run in their own process, as real firmware would (not in the load generator)
        doors = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "doors",
                "--port",
                str(broker.port),
                "--doors",
                str(args.doors),
            ],
            stdin=subprocess.PIPE,
        )
        try:
            gw.start()
            ids = [f"b{i}-entrance" for i in range(1, args.doors + 1)]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all(gw.get(f"/api/v1/devices/{d}").json()["online"] for d in ids):
                    break
                time.sleep(0.1)
            exp = int(time.time()) + 3600
            tokens = []
            for r in range(args.residents):
                b = r % args.doors + 1
                claims = {"sub": f"r-{r}", "community": "c1", "building": f"b{b}", "exp": exp}
                tokens.append((jwt.encode(claims, JWT_SECRET, algorithm="HS256"), f"b{b}-entrance"))
            floor, _, _ = asyncio.run(
                fire(gw.api, [(t, "healthz") for t, _ in tokens], args.rounds)
            )
            client_ms, server_ms, failures = asyncio.run(fire(gw.api, tokens, args.rounds))
            print(
                f"{args.residents} concurrent residents x {args.rounds} rounds,"
                f" {args.doors} door(s); failures: {len(failures)} {sorted(set(failures))}"
            )
            print(summary("GET /healthz (HTTP floor)", floor))
            print(summary("client (HTTP round trip)", client_ms))
            print(summary("gateway latency_ms     ", server_ms))
            doors.stdin.close()  # type: ignore[union-attr]
            doors.wait(20)
            while gw.get(f"/api/v1/devices/{ids[0]}").json()["online"] is not False:
                time.sleep(0.05)
            print(
                summary(
                    "door offline -> 503    ",
                    asyncio.run(offline_503(gw.api, tokens[0][0], ids[0], 200)),
                )
            )
        finally:
            if doors.poll() is None:
                doors.kill()
            gw.stop()
            broker.stop()


if __name__ == "__main__":
    main()
