"""The Node-RED reference: ``mqtt in`` -> ``json`` -> ``function`` -> ``influxdb out``.

Configured as a user would: node-red-contrib-influxdb's out node with an InfluxDB 2.0 config
pointing at the write API, the MQTT broker config with a fixed client id, clean session off and
QoS 1, so that it drains the queue the broker kept for that client id.

    .venv/bin/python -m bench.nodered 20000
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
INSTALL = BENCH / ".node-red"
PACKAGES = ["node-red@5", "node-red-contrib-influxdb@0.7"]


def _log(text: str) -> None:
    print(f"[nodered] {text}", file=sys.stderr, flush=True)


def ensure_installed() -> Path:
    """Install Node-RED and the InfluxDB nodes into ``bench/.node-red/`` once; ``red.js``."""
    red = INSTALL / "node_modules" / "node-red" / "red.js"
    influx = INSTALL / "node_modules" / "node-red-contrib-influxdb" / "package.json"
    if red.exists() and influx.exists():
        return red
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the Node-RED reference needs Node.js and npm")
    INSTALL.mkdir(parents=True, exist_ok=True)
    manifest = INSTALL / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "courtyard-bench-node-red", "private": true}\n')
    _log(f"installing {' '.join(PACKAGES)} into {INSTALL} ...")
    t0 = time.monotonic()
    proc = subprocess.run(
        [npm, "install", "--prefix", str(INSTALL), "--no-audit", "--no-fund", *PACKAGES],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not red.exists():
        raise RuntimeError(f"npm install failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    _log(f"installed in {time.monotonic() - t0:.1f} s")
    return red


if __name__ == "__main__":
    print(ensure_installed())
