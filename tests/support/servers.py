"""Real servers for the integration tests, each on its own free port with its own config.

A missing binary is a failure with a clear message, never a skip.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.mqtt.broker import CONFIG_TEMPLATE, free_port

REPO = Path(__file__).resolve().parents[2]


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if path is None:
        raise RuntimeError(
            f"{binary} is not installed: apt-get install {package} (make setup-test)"
        )
    return path


class Mosquitto:
    """A Mosquitto configured like the gateway's embedded one (persistence on, anonymous),
    on a free port; ``auth`` replaces ``allow_anonymous true`` (e.g. a password file) and
    ``extra`` appends lines. ``stop()`` is a clean stop (queues saved), ``kill()`` a crash."""

    def __init__(self, workdir: Path, *, auth: str = "", extra: str = "") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = need("mosquitto", "mosquitto")
        conf = CONFIG_TEMPLATE.format(
            port=self.port,
            host="127.0.0.1",
            data=self.dir,
            log=self.dir / "mosquitto.log",
            user=getpass.getuser(),
        )
        if auth:
            conf = conf.replace(
                "allow_anonymous true\n", auth if auth.endswith("\n") else auth + "\n"
            )
        (self.dir / "mosquitto.conf").write_text(conf + extra)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else b""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """A clean stop: Mosquitto saves its persistent sessions and queues."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, nothing saved since the last autosave."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def pub(self, topic: str, *args: str, stdin: bytes | None = None) -> None:
        """``mosquitto_pub`` against this broker (an independent client)."""
        subprocess.run(
            [
                need("mosquitto_pub", "mosquitto-clients"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-t",
                topic,
                *args,
            ],
            input=stdin,
            check=True,
            timeout=30,
        )


class GatewayProcess:
    """``courtyard serve --config FILE`` as a child process (so it can be killed with -9)."""

    def __init__(
        self,
        workdir: Path,
        *,
        mqtt_url: str | None,
        influx: dict[str, Any] | None = None,
        registry: str = "",
        platform_key: str = "test-platform-key-0123456789",
        extra: str = "",
        store_path: str = "courtyard.db",
        store: dict[str, Any] | None = None,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.key = platform_key
        lines = ["[mqtt]"]
        if mqtt_url:
            lines.append(f'url = "{mqtt_url}"')
        lines += [
            'client_id = "courtyard-test"',
            "",
            "[store]",
            f'path = "{store_path}"',
            *(
                f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
                for k, v in (store or {}).items()
            ),
            "",
            "[api]",
            f'listen = "127.0.0.1:{self.api_port}"',
            "",
            "[auth]",
            f'platform_keys = ["{platform_key}"]',
            "",
        ]
        if influx:
            lines.append("[influxdb]")
            lines += [f'{k} = "{v}"' for k, v in influx.items()]
            lines.append("")
        if registry:
            (self.dir / "community.toml").write_text(registry)
            lines += ["[community]", 'file = "community.toml"', ""]
        (self.dir / "courtyard.toml").write_text("\n".join(lines) + extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "gateway.log"
        self.store_path = store_path

    @property
    def db(self) -> Path:
        return self.dir / self.store_path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "serve",
                    "--config",
                    str(self.dir / "courtyard.toml"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {self.proc.returncode}:\n{self.logs()[-5000:]}"
                )
            try:
                r = httpx.get(f"{self.api}/healthz", timeout=1)
                if r.status_code == 200 and r.json().get("mqtt_connected"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gateway not ready after {timeout} s:\n{self.logs()[-5000:]}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.api}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=10,
        )

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None
