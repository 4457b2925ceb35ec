"""The embedded Mosquitto: started and supervised by the gateway when the config names no broker.

Its configuration is written for the gateway's guarantee (nothing acknowledged is lost), which
Mosquitto's defaults do not give: they drop a persistent session's queue beyond 1,000 messages,
save to disk only every 30 minutes, and delay every small packet by ~44 ms (Nagle's algorithm).
It takes only the accounts of the community file, each bound to its own session, like the files
of ``courtyard broker-config``. docs/broker.md lists the same settings for an operator's own
broker.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import random
import shutil
import socket
import time
from pathlib import Path
from typing import Protocol

from gateway.mqtt.codec import max_packet_size as _packet_limit

log = logging.getLogger(__name__)

MAX_PACKET_SIZE = _packet_limit(65536)  # for the default [store] max_payload_bytes

_HEAD = """\
# Written by Courtyard for its embedded broker; regenerated at every start.
listener {port} {host}
# stay the user that started it (as root Mosquitto would switch to "mosquitto", which cannot
# write the persistence file into the gateway's data folder)
user {user}
"""
_ACCOUNTS = """\
# the accounts and ACLs of `courtyard broker-config`, from the community file
allow_anonymous false
password_file {passwd}
acl_file {acl}
# a session belongs to its account: no device's password reaches the gateway's session
use_username_as_clientid true
max_packet_size {max_packet_size}
"""
_TAIL = """\
persistence true
persistence_location {data}/
# save the in-memory state (queued QoS 1 messages, sessions) every 2 s, not every 30 min
autosave_interval 2
# never drop a persistent session's queue while the gateway is away (default: 1,000 messages)
max_queued_messages 10000000
max_queued_bytes 0
# the gateway's MQTT 5 Receive Maximum decides its window; devices keep the default
max_inflight_messages 0
# small packets (commands, acks) leave at once instead of waiting ~44 ms
set_tcp_nodelay true
persistent_client_expiration 14d
log_dest file {log}
log_type error
log_type warning
log_type notice
connection_messages false
"""
CONFIG_TEMPLATE = _HEAD + "allow_anonymous true\n" + _TAIL
"""An anonymous broker, as the tests and benches start on ports of their own."""
SECURED_TEMPLATE = _HEAD + _ACCOUNTS + _TAIL
"""The embedded broker: per-device accounts and ACLs (docs/security.md)."""


class BrokerError(Exception):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port below the kernel's ephemeral range, so that no outgoing connection takes
    it between now and the moment a server binds it (or binds it again after a restart)."""
    low, high = 20000, 32767
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        high = min(high, ephemeral_low - 1)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerError(
        "no broker configured ([mqtt] url) and no mosquitto binary found: "
        "install it (apt-get install mosquitto, or `make setup`) or set [mqtt] url"
    )


class Broker(Protocol):
    """The broker the gateway connects to, as the gateway sees it."""

    embedded: bool
    restarts: int

    @property
    def url(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int | None: ...

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class OperatorBroker:
    """The operator's own broker (``[mqtt] url``): nothing to start or supervise."""

    embedded = False
    restarts = 0

    def __init__(self, url: str, host: str, port: int) -> None:
        self.url = url
        self.host = host
        self.port: int | None = port

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class EmbeddedBroker:
    """A Mosquitto child process on a local port, restarted if it dies, stopped on exit.

    With ``password_file`` and ``acl_file`` (``gateway.broker_config.write_accounts``) it
    accepts only those accounts, each bound to its own session; without them, anyone who
    reaches the port may pose as any device, which is said loudly at start."""

    embedded = True

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        max_packet_size: int = MAX_PACKET_SIZE,
    ) -> None:
        if (password_file is None) != (acl_file is None):
            raise ValueError("an embedded broker needs both a password file and an ACL file")
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.password_file = password_file
        self.acl_file = acl_file
        self.max_packet_size = max_packet_size
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    def write_config(self) -> Path:
        broker_dir = self.data_dir
        broker_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        values = {
            "port": self.port,
            "host": self.host,
            "data": broker_dir,
            "log": broker_dir / "mosquitto.log",
            "user": getpass.getuser(),
        }
        if self.password_file is None:
            text = CONFIG_TEMPLATE.format(**values)
        else:
            text = SECURED_TEMPLATE.format(
                **values,
                passwd=self.password_file,
                acl=self.acl_file,
                max_packet_size=self.max_packet_size,
            )
        self.config_path.write_text(text)
        return self.config_path

    async def start(self, wait_s: float = 10.0) -> None:
        binary = find_mosquitto()
        self.write_config()
        await self._spawn(binary, wait_s)
        self._task = asyncio.create_task(self._supervise(binary), name="embedded-broker")
        log.info("embedded Mosquitto listening on %s (data in %s)", self.url, self.data_dir)
        if self.password_file is None:
            log.warning(
                "the embedded broker on %s accepts anonymous clients: any local program can "
                "pose as a device, fake a door's ack or a forced-door alarm",
                self.url,
            )

    async def _spawn(self, binary: str, wait_s: float) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(self.config_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                err = b""
                if self._proc.stderr is not None:
                    err = await self._proc.stderr.read()
                raise BrokerError(
                    f"mosquitto exited with {self._proc.returncode}: "
                    f"{err.decode(errors='replace').strip()}"
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise BrokerError(f"mosquitto did not listen on {self.url} within {wait_s} s")

    async def _supervise(self, binary: str) -> None:
        delay = 0.5
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("embedded Mosquitto exited with %s; restarting", code)
            while not self._stopping:
                await asyncio.sleep(delay)
                try:
                    await self._spawn(binary, 10.0)
                except (BrokerError, OSError) as exc:
                    delay = min(delay * 2, 30.0)
                    log.debug("restart failed: %s", exc)
                    continue
                self.restarts += 1
                delay = 0.5
                log.warning("embedded Mosquitto restarted")
                break

    async def stop(self, wait_s: float = 10.0) -> None:
        """SIGTERM (Mosquitto saves its state on a clean exit), then SIGKILL after ``wait_s``."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), wait_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
