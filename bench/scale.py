"""Resident memory and start-up time of the gateway with 1k, 10k and 100k registered devices.

Each device is registered in the community file with ``expect_every_s`` (offline detection
runs for all of them); the gateway runs as ``courtyard serve`` against its own Mosquitto.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from tests.support.servers import GatewayProcess, Mosquitto


def community_file(devices: int) -> str:
    lines = ['[[communities]]\nid = "c1"\n']
    for b in range(1, 51):
        lines.append(f'[[buildings]]\nid = "b{b}"\ncommunity = "c1"\n')
    for i in range(devices):
        lines.append(
            f'[[devices]]\nid = "m-{i:06d}"\ncommunity = "c1"\nclass = "meter"\n'
            f'building = "b{i % 50 + 1}"\nsecret = "{i:064x}"\nexpect_every_s = 60\n'
        )
    return "\n".join(lines)


def measure(workdir: Path, devices: int) -> dict[str, float]:
    broker = Mosquitto(workdir / "broker")
    broker.start()
    gw = GatewayProcess(workdir / "gw", mqtt_url=broker.url, registry=community_file(devices))
    try:
        t0 = time.monotonic()
        gw.start(timeout=300)
        startup = time.monotonic() - t0
        time.sleep(6)  # one liveness sweep and a state checkpoint have run
        assert gw.proc is not None
        rss = psutil.Process(gw.proc.pid).memory_info().rss
    finally:
        gw.stop()
        broker.stop()
    return {"devices": devices, "rss_bytes": rss, "startup_s": startup}


def run(workdir: Path, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> dict[str, object]:
    points = [measure(workdir / f"scale-{n}", n) for n in sizes]
    first, last = points[0], points[-1]
    per_device = (last["rss_bytes"] - first["rss_bytes"]) / (last["devices"] - first["devices"])
    return {"points": points, "bytes_per_device": per_device}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    sizes = tuple(int(a) for a in sys.argv[1:]) or (1_000, 10_000, 100_000)
    print(json.dumps(run(Path(tempfile.mkdtemp()), sizes), indent=2))
