"""A load generator: electricity-meter telemetry for many devices over one or a few connections.

It behaves like a bridge or a concentrator that forwards many meters: ``devices`` ids
(``m-0000``...), messages round-robin over them, each with a ``seq`` increasing per device and a
``ts`` unique per (device, seq) within the last few minutes, published at QoS 1 (by default) on
``{prefix}/{community}/meter/{device}/telemetry``. With ``duplicate_ratio`` it republishes that
fraction of the messages verbatim (same bytes: same ts and seq) a little later, as a bridge retrying
would, so a consumer must de-duplicate: ``unique`` distinct messages, ``published`` publishes.

It waits for every PUBACK and returns (the CLI prints) one JSON object:
``{"published", "unique", "acked", "seconds", "rate"}``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TS_WINDOW_MS = 120_000
"""A device's messages span at most about this much time (and 1 s apart when they fit)."""
DUPLICATE_LOOKBACK = 512
"""A duplicate repeats one of the last this-many messages."""


@dataclass(frozen=True)
class FloodPlan:
    """What to publish; ``messages()`` yields it, deterministically."""

    devices: int
    messages: int
    duplicate_ratio: float = 0.0
    community: str = "c1"
    prefix: str = "community"
    start_seq: int = 0
    ts_base_ms: int = 0
    step_ms: int = 1000
    seed: int = 0

    @property
    def per_device(self) -> int:
        return math.ceil(self.messages / self.devices) if self.devices else 0

    @property
    def duplicates(self) -> int:
        return round(self.messages * self.duplicate_ratio)

    @property
    def total(self) -> int:
        return self.messages + self.duplicates

    def device_id(self, index: int) -> str:
        width = max(4, len(str(self.devices - 1)))
        return f"m-{index:0{width}d}"

    def topic(self, index: int) -> str:
        return f"{self.prefix}/{self.community}/meter/{self.device_id(index)}/telemetry"

    def messages_iter(self) -> Iterator[tuple[int, str, bytes, bool]]:
        """``(device index, topic, payload, is_duplicate)`` for every publish, in order."""
        n_dev = self.devices
        topics = [self.topic(d) for d in range(n_dev)]
        rng = random.Random(self.seed)
        energy0 = [rng.uniform(500.0, 20000.0) for _ in range(n_dev)]
        power0 = [rng.uniform(150.0, 2500.0) for _ in range(n_dev)]
        hours_per_step = self.step_ms / 3_600_000.0
        kwh_per_step = [p * hours_per_step / 1000.0 for p in power0]
        base, step, seq0 = self.ts_base_ms, self.step_ms, self.start_seq
        total_dups, n = self.duplicates, self.messages
        recent: list[tuple[int, str, bytes]] = []
        for i in range(n):
            d = i % n_dev
            k = i // n_dev
            power = power0[d] + ((k * 37 + d * 11) % 200) - 100.0
            voltage = 225.0 + ((k * 13 + d * 7) % 100) / 10.0
            payload = (
                f'{{"ts":{base + k * step},"seq":{seq0 + k},'
                f'"energy_kwh":{energy0[d] + k * kwh_per_step[d]:.3f},'
                f'"power_w":{power:.1f},"voltage_v":{voltage:.1f},'
                f'"current_a":{power / voltage:.2f}}}'
            ).encode()
            yield d, topics[d], payload, False
            if len(recent) < DUPLICATE_LOOKBACK:
                recent.append((d, topics[d], payload))
            else:
                recent[i % DUPLICATE_LOOKBACK] = (d, topics[d], payload)
            # Exactly total_dups duplicates, evenly spread over the run.
            for _ in range((i + 1) * total_dups // n - i * total_dups // n):
                yield (*rng.choice(recent), True)


def make_plan(
    devices: int,
    messages: int,
    *,
    duplicate_ratio: float = 0.0,
    community: str = "c1",
    prefix: str = "community",
    start_seq: int = 0,
    ts_base_ms: int | None = None,
    seed: int = 0,
    now_ms: int | None = None,
) -> FloodPlan:
    """A plan whose timestamps all lie in the recent past (unless ``ts_base_ms`` is given)."""
    if devices <= 0:
        raise ValueError("devices must be positive")
    if messages < 0:
        raise ValueError("messages must not be negative")
    if not 0.0 <= duplicate_ratio <= 1.0:
        raise ValueError("duplicate_ratio must be within 0..1")
    per_device = max(1, math.ceil(messages / devices))
    step_ms = max(1, min(1000, TS_WINDOW_MS // per_device))
    if ts_base_ms is None:
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        ts_base_ms = now - per_device * step_ms - 1000
    return FloodPlan(
        devices=devices,
        messages=messages,
        duplicate_ratio=duplicate_ratio,
        community=community,
        prefix=prefix,
        start_seq=start_seq,
        ts_base_ms=ts_base_ms,
        step_ms=step_ms,
        seed=seed,
    )


_CORK = getattr(socket, "TCP_CORK", None)


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _CORK is not None:
        # Corked, a burst of small PUBLISH packets leaves in full segments; flush() uncorks.
        # On loopback this halves the cost of a publish (one wake-up of the broker per segment).
        sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)


def _uncork(sock: Any) -> None:
    if _CORK is not None and isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
        except OSError:
            pass


class _PahoConn:
    """One paho connection driven by hand (no network thread): select, read, write."""

    def __init__(
        self, client_id: str, host: str, port: int, username: str | None, password: str | None
    ) -> None:
        self.host, self.port = host, port
        self.pending = 0
        self.acked = 0
        self.connected = False
        self.failed: str | None = None
        self.next_retry = 0.0
        self.closing = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        # The window is kept here: paho's own (max_inflight_messages) rescans every queued
        # message on each PUBACK, which costs more than the rest of the publish path.
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_socket_open = lambda client, userdata, sock: _tune(sock)

    def connect(self) -> None:
        self.client.connect(self.host, self.port, keepalive=60)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.failed = str(rc)
        else:
            self.connected = True

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.pending -= 1
        self.acked += 1

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.client.publish(topic, payload, qos=qos)
        self.pending += 1  # on_publish takes it back (PUBACK, or written for QoS 0)

    def sock(self) -> Any:
        s = self.client.socket()
        if s is None and not self.closing:
            now = time.monotonic()
            if now >= self.next_retry:
                self.next_retry = now + 1.0
                with contextlib.suppress(OSError):
                    self.client.reconnect()  # unacked QoS 1 messages are sent again
                s = self.client.socket()
        return s

    def want_write(self) -> bool:
        return self.client.want_write()

    def on_readable(self) -> None:
        self.client.loop_read()

    def on_writable(self) -> None:
        self.client.loop_write()

    def flush(self) -> None:
        _uncork(self.client.socket())

    def tick(self) -> None:
        if self.client.socket() is not None:
            self.client.loop_misc()

    def close(self) -> None:
        self.closing = True
        self.client.disconnect()
        self.flush()


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return len(raw).to_bytes(2, "big") + raw


class _RawConn:
    """A minimal MQTT 3.1.1 publisher written from the specification: CONNECT, PUBLISH (QoS 0/1),
    PUBACK, PINGREQ, DISCONNECT; packets are built in bulk and written in large chunks.

    It does not reconnect: a lost connection ends the run (the summary shows what was acked).
    """

    def __init__(
        self, client_id: str, host: str, port: int, username: str | None, password: str | None
    ) -> None:
        self.host, self.port = host, port
        self.client_id, self.username, self.password = client_id, username, password
        self.pending = 0
        self.acked = 0
        self.connected = False
        self.failed: str | None = None
        self.closing = False
        self._sock: socket.socket | None = None
        self._out = bytearray()
        self._in = bytearray()
        self._mid = 0
        self._last_io = time.monotonic()

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        _tune(sock)
        flags = 0x02  # clean session
        payload = _utf8(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _utf8(self.username)
            if self.password is not None:
                flags |= 0x40
                payload += _utf8(self.password)
        body = _utf8("MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big") + payload
        self._out += b"\x10" + _remaining_length(len(body)) + body
        sock.setblocking(False)
        self._sock = sock
        self.flush()

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        t = _utf8(topic)
        if qos:
            self._mid = self._mid % 0xFFFF + 1
            self._out += (
                b"\x32"
                + _remaining_length(len(t) + 2 + len(payload))
                + t
                + self._mid.to_bytes(2, "big")
                + payload
            )
            self.pending += 1
        else:
            self._out += b"\x30" + _remaining_length(len(t) + len(payload)) + t + payload
            self.acked += 1
        if len(self._out) >= 65536:
            self.on_writable()

    def sock(self) -> Any:
        return self._sock

    def want_write(self) -> bool:
        return bool(self._out)

    def on_writable(self) -> None:
        if self._sock is None or not self._out:
            return
        try:
            sent = self._sock.send(self._out)
        except BlockingIOError:
            return
        except OSError as err:
            self._lost(str(err))
            return
        del self._out[:sent]
        self._last_io = time.monotonic()

    def on_readable(self) -> None:
        if self._sock is None:
            return
        try:
            chunk = self._sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as err:
            self._lost(str(err))
            return
        if not chunk:
            self._lost("connection closed by the broker")
            return
        buf = self._in
        buf += chunk
        pos, end = 0, len(buf)
        while end - pos >= 2:
            kind = buf[pos] >> 4
            length, shift, i = 0, 0, pos + 1
            while i < end:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            else:
                break  # remaining length incomplete
            if i + length > end:
                break
            if kind == 4:  # PUBACK
                self.pending -= 1
                self.acked += 1
            elif kind == 2:  # CONNACK
                rc = buf[i + 1] if length >= 2 else 255
                if rc == 0:
                    self.connected = True
                else:
                    self.failed = f"CONNACK return code {rc}"
            pos = i + length
        del buf[:pos]

    def _lost(self, why: str) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self.connected = False
        if not self.closing:
            self.failed = why

    def flush(self) -> None:
        self.on_writable()
        _uncork(self._sock)

    def tick(self) -> None:
        if self._sock is not None and time.monotonic() - self._last_io > 20.0:
            self._out += b"\xc0\x00"  # PINGREQ
            self.flush()

    def close(self) -> None:
        self.closing = True
        if self._sock is None:
            return
        self._out += b"\xe0\x00"  # DISCONNECT
        self._sock.setblocking(True)
        with contextlib.suppress(OSError):
            self._sock.sendall(self._out)
            self._out.clear()
            self._sock.shutdown(socket.SHUT_WR)
        self._sock.close()
        self._sock = None


_Conn = _PahoConn | _RawConn
ENGINES = {"paho": _PahoConn, "raw": _RawConn}


def _pump(conns: list[_Conn], timeout: float) -> None:
    """One round of network I/O for all connections: read acks, flush writes."""
    rlist, wlist = [], []
    by_sock = {}
    for c in conns:
        s = c.sock()
        if s is None:
            continue
        c.flush()
        by_sock[s] = c
        rlist.append(s)
        if c.want_write():
            wlist.append(s)
    if not rlist:
        time.sleep(timeout)
        return
    readable, writable, _ = select.select(rlist, wlist, [], timeout)
    for s in readable:
        by_sock[s].on_readable()
    for s in writable:
        c = by_sock[s]
        if c.sock() is s:
            c.on_writable()


def flood(
    host: str,
    port: int,
    devices: int = 1000,
    messages: int = 100_000,
    *,
    duplicate_ratio: float = 0.0,
    rate: float = 0.0,
    qos: int = 1,
    community: str = "c1",
    prefix: str = "community",
    start_seq: int = 0,
    ts_base_ms: int | None = None,
    connections: int = 1,
    inflight: int = 1000,
    engine: str = "paho",
    timeout_s: float = 60.0,
    seed: int = 0,
    username: str | None = None,
    password: str | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Publish the plan's messages and wait for their acks; return the summary.

    ``rate`` is in publishes per second (0: as fast as possible); ``inflight`` is the number of
    unacknowledged QoS 1 messages allowed per connection. ``engine`` is ``"paho"`` (the paho
    client) or ``"raw"`` (a minimal built-in MQTT 3.1.1 publisher, several times faster).
    ``timeout_s`` bounds the wait for the connection and, when nothing moves, for acks. Progress
    lines go to ``progress`` (e.g. ``sys.stderr``) every second.
    """
    if qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}")
    plan = make_plan(
        devices,
        messages,
        duplicate_ratio=duplicate_ratio,
        community=community,
        prefix=prefix,
        start_seq=start_seq,
        ts_base_ms=ts_base_ms,
        seed=seed,
    )
    connections = max(1, min(connections, devices))
    inflight = max(1, min(inflight, 60_000))
    tag = f"flood-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    conn_cls = ENGINES[engine]
    conns: list[_Conn] = [
        conn_cls(f"{tag}-{i}", host, port, username, password) for i in range(connections)
    ]
    try:
        return _run(plan, conns, qos, rate, inflight, timeout_s, progress)
    finally:
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()


def _run(
    plan: FloodPlan,
    conns: list[_Conn],
    qos: int,
    rate: float,
    inflight: int,
    timeout_s: float,
    progress: TextIO | None,
) -> dict[str, Any]:
    for c in conns:
        c.connect()
    deadline = time.monotonic() + timeout_s
    while not all(c.connected for c in conns):
        failed = [c.failed for c in conns if c.failed]
        if failed:
            raise ConnectionError(f"broker refused the connection: {failed[0]}")
        if time.monotonic() > deadline:
            raise TimeoutError("no CONNACK from the broker")
        _pump(conns, 0.05)

    n_conns = len(conns)
    published = 0
    t0 = time.monotonic()
    next_report = t0 + 1.0
    last_count = 0

    def report(now: float) -> None:
        nonlocal next_report, last_count
        if progress is not None:
            acked = sum(c.acked for c in conns)
            print(
                f"flood: {published}/{plan.total} published, {acked} acked, "
                f"{published - last_count} msg/s",
                file=progress,
                flush=True,
            )
        last_count = published
        next_report = now + 1.0
        for c in conns:
            c.tick()

    def check_failed() -> None:
        failed = [c.failed for c in conns if c.failed]
        if failed:
            raise ConnectionError(f"connection lost: {failed[0]}")

    for d, topic, payload, _dup in plan.messages_iter():
        c = conns[d % n_conns]
        waiting_since = time.monotonic()
        while c.pending >= inflight or not c.connected:
            if isinstance(c, _RawConn):
                check_failed()
            _pump(conns, 0.05)
            now = time.monotonic()
            if now >= next_report:
                report(now)
            if now - waiting_since > timeout_s:  # a broker gone for good: give up, loudly
                raise TimeoutError(f"no progress for {timeout_s:g} s ({published} published)")
        if rate > 0:
            due = t0 + published / rate
            while (now := time.monotonic()) < due:
                if now >= next_report:
                    report(now)
                _pump(conns, min(due - now, 0.05))
        c.publish(topic, payload, qos)
        published += 1
        if published & 0xFF == 0:
            _pump(conns, 0.0)
            now = time.monotonic()
            if now >= next_report:
                report(now)

    last_progress = time.monotonic()
    last_acked = -1
    while True:
        acked = sum(c.acked for c in conns)
        if acked >= published or any(isinstance(c, _RawConn) and c.failed for c in conns):
            break
        now = time.monotonic()
        if acked != last_acked:
            last_acked, last_progress = acked, now
        elif now - last_progress > timeout_s:
            break
        if now >= next_report:
            report(now)
        _pump(conns, 0.05)
    seconds = time.monotonic() - t0
    acked = sum(c.acked for c in conns)
    if progress is not None:
        report(time.monotonic())
    return {
        "published": published,
        "unique": plan.messages,
        "acked": min(acked, published),
        "seconds": round(seconds, 3),
        "rate": round(published / seconds, 1) if seconds > 0 else 0.0,
    }
