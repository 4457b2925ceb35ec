"""The Node-RED reference: ``mqtt in`` -> ``json`` -> ``function`` -> ``influxdb out``.

Configured as a user would: node-red-contrib-influxdb's out node with an InfluxDB 2.0 config
pointing at the write API (no token), the MQTT broker config with a fixed client id, clean
session off and QoS 1, so that it drains the queue the broker kept for that client id. The flow
and the settings are templates in ``bench/nodered/``; Node-RED is installed with npm into
``bench/.node-red/`` on first use.

    .venv/bin/python -m bench.nodered 20000
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
TEMPLATES = BENCH / "nodered"
INSTALL = BENCH / ".node-red"
STALL_S = 15.0


def _log(text: str) -> None:
    print(f"[nodered] {text}", file=sys.stderr, flush=True)


def _node_red_major() -> int:
    """Node-RED 5 needs Node.js 22.9 or later; on an older Node.js, Node-RED 4 (>= 18.5)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the Node-RED reference needs Node.js and npm")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = (int(x) for x in out.strip().lstrip("v").split(".")[:2])
    return 5 if (major, minor) >= (22, 9) else 4


def installed_versions() -> str:
    """``node-red X, node-red-contrib-influxdb Y`` as installed in ``bench/.node-red/``."""
    found = []
    for package in ("node-red", "node-red-contrib-influxdb"):
        manifest = INSTALL / "node_modules" / package / "package.json"
        try:
            found.append(f"{package} {json.loads(manifest.read_text())['version']}")
        except (OSError, ValueError, KeyError):
            found.append(f"{package} not installed")
    return ", ".join(found)


def ensure_installed() -> Path:
    """Install Node-RED and the InfluxDB nodes into ``bench/.node-red/`` once; ``red.js``."""
    major = _node_red_major()
    red = INSTALL / "node_modules" / "node-red" / "red.js"
    influx = INSTALL / "node_modules" / "node-red-contrib-influxdb" / "package.json"
    if red.exists() and influx.exists():
        version = json.loads((red.parent / "package.json").read_text())["version"]
        if version.split(".")[0] == str(major):
            return red
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the Node-RED reference needs Node.js and npm")
    packages = [f"node-red@{major}", "node-red-contrib-influxdb@0.7"]
    if major < 5:
        _log("Node.js older than 22.9: Node-RED 5 refuses to start on it, installing Node-RED 4")
    INSTALL.mkdir(parents=True, exist_ok=True)
    manifest = INSTALL / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "courtyard-bench-node-red", "private": true}\n')
    _log(f"installing {' '.join(packages)} into {INSTALL} ...")
    t0 = time.monotonic()
    proc = subprocess.run(
        [npm, "install", "--prefix", str(INSTALL), "--no-audit", "--no-fund", *packages],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not red.exists() or not influx.exists():
        raise RuntimeError(f"npm install failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    _log(f"installed in {time.monotonic() - t0:.1f} s")
    return red


def _write_config(workdir: Path, broker_port: int, client_id: str, influx_url: str) -> Path:
    from gateway.mqtt.broker import free_port

    flow = (TEMPLATES / "flow.json").read_text()
    for key, value in {
        "__BROKER_PORT__": str(broker_port),
        "__CLIENT_ID__": client_id,
        "__INFLUX_URL__": influx_url,
    }.items():
        flow = flow.replace(key, value)
    json.loads(flow)  # a placeholder value must not break the JSON
    (workdir / "flows.json").write_text(flow)
    settings = workdir / "settings.js"
    text = (TEMPLATES / "settings.js").read_text().replace("__UI_PORT__", str(free_port()))
    settings.write_text(text)
    return settings


class _Output:
    """Node-RED's console, copied to ``node-red.log``; notes when the MQTT node connects."""

    def __init__(self, proc: subprocess.Popen[str], path: Path) -> None:
        self.connected_at: float | None = None
        self.errors: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._read, args=(proc, path), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str], path: Path) -> None:
        assert proc.stdout is not None
        with path.open("w") as log:
            for line in proc.stdout:
                log.write(line)
                if self.connected_at is None and "Connected to broker" in line:
                    self.connected_at = time.monotonic()
                elif "[error]" in line:
                    self.errors[line.split("] ", 2)[-1].strip()[:120]] += 1

    def join(self) -> None:
        self._thread.join(10)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT: Node-RED stops its flows (the MQTT node disconnects) and exits."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            _log("Node-RED did not exit in 20 s after SIGINT: killed")
            proc.kill()
            proc.wait()


def drain_nodered(
    broker_port: int,
    client_id: str,
    messages: int,
    influx_url: str,
    workdir: Path,
    count: Callable[[], int],
    stall_s: float = STALL_S,
) -> dict[str, Any]:
    """Run the flow on the queued session until ``count()`` reaches ``messages`` or stalls.

    ``seconds`` runs from the MQTT node's connection to the last poll that saw the count grow
    (``startup_s`` is the time from process start to that connection, not included).
    """
    red = ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = _write_config(workdir, broker_port, client_id, influx_url)
    node = shutil.which("node") or "node"
    cmd = [node, str(red), "--userDir", str(workdir), "--settings", str(settings), "flows.json"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir
    )
    out = _Output(proc, workdir / "node-red.log")
    try:
        while out.connected_at is None:
            if proc.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(
                    "Node-RED exited or did not connect to the broker:\n"
                    + (workdir / "node-red.log").read_text()[-3000:]
                )
            time.sleep(0.02)
        connected = out.connected_at
        stored, grew_at = 0, connected
        while stored < messages and time.monotonic() - grew_at < stall_s:
            time.sleep(0.5)
            now, n = time.monotonic(), count()
            if n > stored:
                stored, grew_at = n, now
            if proc.poll() is not None:
                _log(f"Node-RED exited with {proc.returncode} during the drain")
                break
    finally:
        _stop(proc)
        out.join()
    seconds = grew_at - connected
    lost = messages - stored
    if lost > 0:
        _log(f"Node-RED lost {lost} of {messages} points (no growth for {stall_s:.0f} s)")
    if out.errors:
        _log(f"{out.errors.total()} errors logged in {workdir / 'node-red.log'}")
    return {
        "rate": stored / seconds if seconds > 0 else 0.0,
        "stored": stored,
        "lost": lost,
        "seconds": round(seconds, 3),
        "startup_s": round(connected - started, 3),
        "errors": dict(out.errors.most_common(3)),
    }


def main() -> None:
    from bench.ingest import make_sessions, queue
    from tests.support.influx import VictoriaMetricsServer
    from tests.support.servers import Mosquitto

    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    client_id = "bench-nodered"
    ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="courtyard-nodered-"))
    broker, vm = Mosquitto(root / "broker"), VictoriaMetricsServer(root / "vm")
    broker.start()
    try:
        vm.start()
        make_sessions(broker.port, [client_id])
        _log(f"queuing {messages} messages ...")
        queue(broker.port, messages, 0)
        result = drain_nodered(
            broker.port,
            client_id,
            messages,
            vm.url,
            root / "node-red",
            lambda: vm.count("meter_power_w"),
        )
    finally:
        vm.stop()
        broker.stop()
    if result["lost"] or result["errors"]:
        _log(f"kept {root} (Node-RED's log is node-red/node-red.log)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
