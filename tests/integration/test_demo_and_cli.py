"""`courtyard demo` and `courtyard serve` as a user runs them: real processes, real ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from gateway.mqtt.broker import free_port
from tests.support.servers import REPO
from tests.support.wait import wait_for


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_demo_serves_devices_online_with_growing_readings_and_stops_cleanly(tmp_path: Path):
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "demo",
                "--data-dir",
                str(tmp_path / "d"),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    started = time.monotonic()
    try:
        key_line = wait_for(
            lambda: re.search(r"platform key: (\S+)", log.read_text()),
            timeout=15,
            what="the platform key",
        )
        key = key_line.group(1)  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {key}"}
        api = f"http://127.0.0.1:{port}/api/v1/devices"

        def online_meters() -> list[dict]:
            devices = httpx.get(api, headers=headers, timeout=5).json()["devices"]
            return [d for d in devices if d["online"] and d["latest"]]

        wait_for(lambda: len(online_meters()) >= 100, timeout=10, what="devices online")
        assert time.monotonic() - started < 15
        devices = httpx.get(api, headers=headers, timeout=5).json()["devices"]
        assert len(devices) >= 108
        classes = {d["class"] for d in devices}
        assert classes == {"access", "parking", "meter", "locker"}
        # the meter room on RS-485 (pseudo-terminals) reports like any native meter
        wait_for(
            lambda: [
                d
                for d in httpx.get(api, headers=headers, timeout=5).json()["devices"]
                if d["id"].startswith("m-room-") and d["online"] and "energy_kwh" in d["latest"]
            ],
            timeout=15,
            what="RS-485 meters online with readings",
        )

        # devices of other ecosystems, bound (Tasmota, Shelly, ...) and discovered (Zigbee2MQTT)
        def adapter_devices() -> dict[str, dict]:
            devices = httpx.get(api, headers=headers, timeout=5).json()["devices"]
            return {d["id"]: d for d in devices if d["adapter"] and d["latest"]}

        wait_for(
            lambda: {"tasmota-pow1", "shelly-main-meter"} <= set(adapter_devices()),
            timeout=15,
            what="Tasmota and Shelly meters with readings",
        )
        assert adapter_devices()["tasmota-pow1"]["latest"]["energy_kwh"]["unit"] == "kWh"
        assert any(not d["registered"] for d in adapter_devices().values())
        assert httpx.get(api, timeout=5).status_code == 401

        def energy() -> dict[str, float]:
            return {
                d["id"]: d["latest"]["energy_kwh"]["value"]
                for d in httpx.get(
                    api, headers=headers, params={"class": "meter"}, timeout=5
                ).json()["devices"]
                if "energy_kwh" in d["latest"]
            }

        first = energy()
        assert first
        wait_for(
            lambda: any(energy()[k] > v for k, v in first.items()),
            timeout=10,
            what="meter readings to grow",
        )
        kids = children_of(proc.pid)
        assert any("mosquitto" in k.name() for k in kids)
    finally:
        kids = children_of(proc.pid)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, log.read_text()[-3000:]
    time.sleep(0.5)
    leftovers = [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[mqtt]\nurl = "http://broker"\n', "mqtt.url = 'http://broker'"),
        ("[store]\ncommit_max_messages = 0\n", "store.commit_max_messages = 0"),
        ("[api]\nlistn = '1'\n", "api.listn = '1': unknown key"),
    ],
)
def test_serve_refuses_a_bad_config_with_the_key(tmp_path: Path, config: str, expected: str):
    cfg = tmp_path / "c.toml"
    cfg.write_text(config)
    r = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert r.returncode == 2
    assert expected in r.stderr


def test_serve_with_embedded_broker_leaves_no_process_behind(tmp_path: Path):
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\nlisten = "127.0.0.1:{port}"\n[auth]\nplatform_keys = ["{"k" * 20}"]\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _healthy(port), timeout=15, what="the gateway")
        kids = children_of(proc.pid)
        assert [k for k in kids if "mosquitto" in k.name()]
        assert (tmp_path / "broker" / "mosquitto.conf").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    time.sleep(0.3)
    assert [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE] == []


def _healthy(port: int) -> bool:
    try:
        return bool(
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["mqtt_connected"]
        )
    except httpx.HTTPError:
        return False
