"""Real time-series servers for the tests, on free ports, in temporary folders.

``InfluxdServer`` runs Debian's ``influxd`` (1.x, the v1 ``/write`` API);
``VictoriaMetricsServer`` runs ``victoria-metrics``, which accepts the v2 write API
(``/api/v2/write``; it ignores org and bucket: a point becomes one series per field, named
``<measurement>_<field>`` and labelled with the tags). Both can be stopped and started again
on the same data folder, for outage tests. A missing binary fails the test with a clear
message: these tests are the proof that the sink works against real servers.

``FaultServer`` is a scripted HTTP server of our own, for answers a real server will not
give on demand (429 with Retry-After, 500, 400 for one poison line).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.mqtt.broker import free_port

INFLUXD = "/usr/bin/influxd"
VICTORIA_METRICS = "/usr/bin/victoria-metrics"


def _require(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        raise RuntimeError(
            f"{binary} is not installed: these tests need a real server "
            f"(apt-get install {package}); they are never skipped"
        )


class _Process:
    """A server process with a log file, a readiness probe, stop() and start() again."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = root / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._proc.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if self.ready():
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> None:
        """A clean shutdown (SIGTERM), so that acknowledged writes are on disk."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def log(self, tail: int = 4000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""


class InfluxdServer(_Process):
    """InfluxDB 1.x: HTTP on a free port, every other listener off or on a free port."""

    name = "influxd"

    def __init__(self, root: Path, binary: str = INFLUXD) -> None:
        _require(binary, "influxdb")
        super().__init__(root)
        self.binary = binary
        self.rpc_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{root / "meta"}"
[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[logging]
  level = "warn"
"""
        )

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.config)]

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/ping", timeout=1).status_code == 204

    def query(self, q: str, db: str = "") -> list[dict[str, Any]]:
        """Run InfluxQL; the ``results`` list. POST, so that CREATE/DROP work too."""
        resp = httpx.post(f"{self.url}/query", data={"q": q, "db": db}, timeout=30)
        resp.raise_for_status()
        results: list[dict[str, Any]] = resp.json()["results"]
        for result in results:
            if "error" in result:
                raise RuntimeError(f"{q!r}: {result['error']}")
        return results

    def create_database(self, name: str) -> str:
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def count(self, db: str, measurement: str, field: str, where: str = "") -> int:
        """Points of ``measurement`` that have ``field`` (one per row written)."""
        q = f'SELECT count("{field}") FROM "{measurement}"' + (f" WHERE {where}" if where else "")
        series = self.query(q, db)[0].get("series")
        return int(series[0]["values"][0][1]) if series else 0


class VictoriaMetricsServer(_Process):
    """VictoriaMetrics: the v2 write API at ``/api/v2/write``, read back with export.

    ``-dedup.minScrapeInterval=1ms`` keeps one sample per series and millisecond, which
    makes a replay idempotent as it is on InfluxDB (without it, a replay is stored twice).
    """

    name = "victoria-metrics"

    def __init__(self, root: Path, binary: str = VICTORIA_METRICS) -> None:
        _require(binary, "victoria-metrics")
        super().__init__(root)
        self.binary = binary

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.root / 'data'}",
            "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=WARN",
        ]

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching the selector, with its values (after a forced flush)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=30).raise_for_status()
        resp = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=60)
        resp.raise_for_status()
        return [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]

    def count(self, match: str) -> int:
        """Samples in every series matching the selector (one per point and field)."""
        return sum(len(s["values"]) for s in self.export(match))


@contextlib.contextmanager
def running(server: _Process) -> Iterator[_Process]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influxd_v1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdServer]:
    try:
        server = InfluxdServer(tmp_path_factory.mktemp("influxd"))
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    try:
        server = VictoriaMetricsServer(tmp_path_factory.mktemp("victoria"))
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


# -- a scripted server for the answers real servers do not give on demand ------------------

Answer = tuple[int, dict[str, str], bytes]


class FaultServer:
    """An HTTP server whose every answer comes from ``respond(path, headers, body)``.

    It records each request as ``(path, headers, body)`` in :attr:`requests`.
    """

    def __init__(self, respond: Callable[[str, dict[str, str], bytes], Answer]) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers, body))
                status, extra, content = respond(self.path, headers, body)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-server")

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
