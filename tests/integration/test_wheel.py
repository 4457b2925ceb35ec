"""The wheel as a new user installs it: ``python -m build`` (the sdist, then the wheel from the
sdist), the wheel installed into a fresh virtual environment outside the checkout, and
``courtyard demo`` started from another folder with nothing of the source tree in reach. A
run-time file missing from the package data fails here: in the wheel's file list, and in the
pages the installed gateway serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Route, sync_playwright

from gateway.api.console import PAGES
from gateway.mqtt.broker import free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import REPO
from tests.support.wait import wait_for
from tests.unit.test_package_data import run_time_files

KEY = "wheel-check-platform-key-0123456789"


def run(cmd: list[str | Path], timeout: float, **kwargs: object) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # uv as build's installer: the isolated build environment in seconds, from uv's cache
    run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", out, REPO], timeout=240)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("courtyard-*.whl")
    return found


def test_the_wheel_and_the_sdist_hold_every_run_time_file(dist: Path, wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"dashboards/{f}" for f in run_time_files("dashboards")}
    assert any(w.startswith("dashboards/console/templates/") for w in wanted)
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/"))]
    (sdist,) = dist.glob("courtyard-*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {n.partition("/")[2] for n in tar.getnames()}
    assert not wanted - in_sdist, f"missing from the sdist: {sorted(wanted - in_sdist)}"
    assert "LICENSE" in in_sdist

    (info,) = {n.partition("/")[0] for n in names if n.endswith(".dist-info/METADATA")}
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert f"{info}/licenses/LICENSE" in names
    required = {re.split(r"[\s<>=!~;\[]", r)[0].lower() for r in meta.get_all("Requires-Dist")}
    # the simulated devices of `courtyard demo`, and Swagger UI's files
    assert {"paho-mqtt", "fastapi-offline"} <= required


@dataclass
class Demo:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _get(url: str, **kwargs: object) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return None


@pytest.fixture(scope="module")
def demo(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], timeout=60)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "uv", "pip", "install", "--python", python, wheel], timeout=240)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    # nothing of the checkout or of this test run's environment in reach
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith("COURTYARD_")
    }
    env |= {"COURTYARD_DEMO_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    where = run(
        [python, "-c", "import dashboards, firmware_stubs, gateway as g; print(g.__file__)"],
        timeout=30,
        cwd=elsewhere,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(venv), where

    port = free_port()
    log = root / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [venv / "bin" / "courtyard", "demo", "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=elsewhere,
            env=env,
        )
    running = Demo(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or ((r := _get(f"{running.base}/healthz")) is not None and r.status_code == 200)
            ),
            timeout=30,
            what="/healthz",
        )
        assert proc.poll() is None, f"courtyard demo exited {proc.returncode}:\n{running.tail()}"
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, f"courtyard demo stopped with {proc.returncode}:\n{running.tail()}"
    assert (elsewhere / "courtyard-demo" / "courtyard.db").is_file()  # its data, where it ran


def test_the_installed_demo_has_devices_online(demo: Demo) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}

    def online() -> int:
        answer = _get(f"{demo.base}/api/v1/devices", headers=headers)
        assert answer is not None and answer.status_code == 200, demo.tail()
        return sum(1 for d in answer.json()["devices"] if d["online"])

    wait_for(lambda: online() >= 100, timeout=30, what="the demo's devices online")
    answer = _get(f"{demo.base}/api/v1/devices")
    assert answer is not None and answer.status_code == 401


def test_the_installed_console_renders_every_page(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base, timeout=10) as client:
        # the site root sends a browser to the console, which asks it to sign in
        landing = client.get("/", follow_redirects=True)
        assert landing.status_code == 200
        assert landing.url.path == "/console/login"
        assert "Sign in to the console" in landing.text
        for static in ("console.css", "security.js", "devices.js"):
            assert client.get(f"/console/static/{static}").status_code == 200, static
        signed_in = client.post("/console/login", data={"key": KEY})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/console/security"
        for page, title in PAGES.items():
            answer = client.get(f"/console/{page}")
            assert answer.status_code == 200, (page, answer.text[:500])
            assert f"<title>{title} · Courtyard</title>" in answer.text, page


def test_the_installed_docs_render_with_no_network_access(demo: Demo) -> None:
    refused: list[str] = []  # requests for another host (a CDN)
    csp: list[str] = []  # what the page's policy refused

    def local_only(route: Route) -> None:
        if route.request.url.startswith(demo.base + "/"):
            route.continue_()
        else:  # what a LAN without internet access would not reach
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            page.on(
                "console",
                lambda m: (
                    m.type == "error" and "Content Security Policy" in m.text and csp.append(m.text)
                ),
            )
            page.goto(f"{demo.base}/docs")
            page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
            assert "Courtyard" in page.inner_text(".swagger-ui .info .title")
            assert page.locator(".swagger-ui .opblock").count() >= 5
            page.goto(f"{demo.base}/redoc")
            page.wait_for_selector("h1", timeout=15_000)
            assert "Courtyard" in page.inner_text("h1")
        finally:
            browser.close()
    assert not refused, refused
    # the policy refuses only what is not the gateway's (ReDoc's attribution logo on its CDN):
    # none of the gateway's own files, no inline script of the page
    assert not [m for m in csp if demo.base in m or "inline" in m], csp
