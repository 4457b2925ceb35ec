"""The base simulated device: one MQTT connection, heartbeats, last will, commands, faults.

Every simulated device:

- connects with its own MQTT client (client id = device id), sets its last will to a retained
  ``{"state":"offline"}`` on its status topic (QoS 1), and publishes a retained
  ``{"state":"online"}`` whenever it (re)connects;
- publishes telemetry every ``expect_every_s`` seconds (its heartbeat) and on change;
- numbers every telemetry and event message with a per-device ``seq`` that only goes up, and
  stamps it with ``ts`` in epoch milliseconds;
- reconnects by itself (with backoff) when the broker goes away;
- verifies signed commands on its ``cmd`` topic (``firmware_stubs.signing``) and acks them, under
  command rule 2 (``command_rule=1`` builds firmware that predates it: a command that arrives
  up to 30 s after its ``expires_at`` is still executed);
- has faults on demand: ``go_silent()``, ``disconnect_abruptly()``, ``send_garbage()``.

Timed behaviour runs on a ``Scheduler`` (one thread, shared by a whole community).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs import signing

log = logging.getLogger("firmware_stubs")

ONLINE = b'{"state":"online"}'
OFFLINE = b'{"state":"offline"}'
GARBAGE = b"\xff\xfe\x00garbage{not json"

CommandHandler = Callable[[dict[str, Any]], "str | Callable[[], None] | None"]
"""Validates a command's ``args``: returns an error code to refuse it, or the effect to run once
the ok ack is out (or ``None`` when there is nothing more to do). It must not block."""


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def encode(obj: dict[str, Any]) -> bytes:
    """The devices' own JSON encoder: compact, UTF-8, non-ASCII kept as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Timer:
    """A handle on a scheduled call; ``cancel()`` makes it a no-op."""

    __slots__ = ("args", "cancelled", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs delayed calls on one thread, on the monotonic clock."""

    def __init__(self, name: str = "firmware-scheduler") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._cv = threading.Condition()
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        with self._cv:
            if self._thread is not None:
                return
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._cv.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(fn, args)
        with self._cv:
            due = time.monotonic() + max(0.0, delay_s)
            heapq.heappush(self._heap, (due, next(self._counter), timer))
            if self._heap[0][2] is timer:  # else the thread wakes in time anyway
                self._cv.notify()
        return timer

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stopped:
                        return
                    if not self._heap:
                        self._cv.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        timer = heapq.heappop(self._heap)[2]
                        break
                    self._cv.wait(wait)
            if timer.cancelled:
                continue
            try:
                timer.fn(*timer.args)
            except Exception:
                log.exception("scheduled call %r failed", timer.fn)


class SimDevice:
    """A simulated MQTT-native device. Subclasses set ``device_class``, ``telemetry()``,
    ``_start_behaviour()`` and, for commandable devices, ``command_handlers``."""

    device_class: ClassVar[str] = "meter"
    default_expect_every_s: ClassVar[int] = 60
    kind: ClassVar[str] = "device"

    def __init__(
        self,
        device_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        community: str = "c1",
        prefix: str = "community",
        building: str = "",
        secret: str | None = None,
        expect_every_s: int | None = None,
        rate_scale: float = 1.0,
        seed: str | int = 0,
        scheduler: Scheduler | None = None,
        telemetry_qos: int = 1,
        keepalive: int = 30,
        start_seq: int = 0,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], int] = now_ms,
        command_rule: int = signing.COMMAND_RULE,
    ) -> None:
        if rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
        self.device_id = device_id
        self.host = host
        self.port = port
        self.community = community
        self.prefix = prefix
        self.building = building
        self.secret = secret
        self.rate_scale = rate_scale
        base = expect_every_s if expect_every_s is not None else self.default_expect_every_s
        # The heartbeat really used; the registry states this same figure.
        self.expect_every_s: int = max(1, round(base / rate_scale))
        self.rng = random.Random(f"{seed}:{device_id}")
        self.telemetry_qos = telemetry_qos
        self.keepalive = keepalive
        self.clock = clock
        self.command_rule = command_rule
        self.boot_ms = clock()
        self.battery_pct: float = round(self.rng.uniform(62.0, 100.0), 1)

        self._own_scheduler = scheduler is None
        self.scheduler = scheduler if scheduler is not None else Scheduler(f"sched-{device_id}")
        self._pub_lock = threading.RLock()  # seq assignment and publish stay in order
        self._state_lock = threading.RLock()
        self._seq = start_seq
        self._seen_ids: dict[str, int] = {}
        self._next_sweep_ms = 0
        self._running = False
        self._started = False
        self._silent = False
        self._away = False
        self._connected = threading.Event()
        self._heartbeat_timer: Timer | None = None
        self.command_handlers: dict[str, CommandHandler] = {}
        self.acks_sent = 0

        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.will_set(self.topic("status"), OFFLINE, qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_socket_open = self._on_socket_open

    # -- identity ---------------------------------------------------------------------------

    def topic(self, message: str) -> str:
        return f"{self.prefix}/{self.community}/{self.device_class}/{self.device_id}/{message}"

    @property
    def seq(self) -> int:
        """The seq of the last message published (``start_seq`` before any)."""
        return self._seq

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def silent(self) -> bool:
        return self._silent

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def describe(self) -> str:
        """A short human description (used as a comment in the registry)."""
        return self.kind

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background, retrying until the broker answers) and start behaving."""
        if self._running:
            return
        self._running = True
        self._started = True
        self.boot_ms = self.clock()
        if self._own_scheduler:
            self.scheduler.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        # Spread the first heartbeats so a community does not report in one burst.
        self._heartbeat_timer = self.after(
            self.rng.uniform(0.2, min(5.0, self.expect_every_s)), self._heartbeat
        )
        self._start_behaviour()

    def stop(self, timeout: float = 5.0) -> None:
        """Clean shutdown: stop behaving, retained offline status, DISCONNECT, join the thread."""
        self.halt()
        self.close(self.announce_offline(), timeout)

    def halt(self) -> None:
        """Stop all timed behaviour (first step of a clean shutdown)."""
        self._running = False
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()

    def announce_offline(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained offline status (second step of a clean shutdown)."""
        if not self._started or not self.connected:
            return None
        return self.client.publish(self.topic("status"), OFFLINE, qos=1, retain=True)

    def close(self, offline: mqtt.MQTTMessageInfo | None, timeout: float = 5.0) -> None:
        """Wait for the offline status to be acked, then DISCONNECT (last step of a shutdown)."""
        if not self._started:
            return
        self._started = False
        if offline is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                offline.wait_for_publish(timeout)
        if not self._away:
            self.client.disconnect()
            self.client.loop_stop()
        self._connected.clear()
        if self._own_scheduler:
            self.scheduler.stop()

    # -- scheduling helpers -------------------------------------------------------------------

    def after(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call ``fn(*args)`` after ``delay_s`` real seconds, unless the device was stopped."""

        def guarded() -> None:
            if self._running:
                fn(*args)

        return self.scheduler.call_later(delay_s, guarded)

    def every(self, mean_s: float, fn: Callable[[], Any]) -> None:
        """Call ``fn`` at random (Poisson) moments, ``mean_s`` apart on average at rate 1."""

        def tick() -> None:
            fn()
            self.after(self.next_delay(mean_s), tick)

        self.after(self.next_delay(mean_s), tick)

    def next_delay(self, mean_s: float) -> float:
        return self.rng.expovariate(self.rate_scale / mean_s)

    def scaled(self, seconds: float) -> float:
        """A duration of simulated behaviour (a door held open, a car parked) at this rate."""
        return seconds / self.rate_scale

    # -- behaviour hooks ----------------------------------------------------------------------

    def telemetry(self) -> dict[str, Any]:
        """The current readings (without ``ts`` and ``seq``)."""
        return {}

    def _start_behaviour(self) -> None:
        """Schedule the device's own random activity."""

    def _advance(self, now_s: float) -> None:
        """Update physical state (meters integrate here) just before a telemetry message."""

    # -- publishing ---------------------------------------------------------------------------

    def _publish_message(
        self, message: str, body: dict[str, Any], qos: int
    ) -> mqtt.MQTTMessageInfo | None:
        if self._silent:
            return None
        with self._pub_lock:
            self._seq += 1
            payload = {"ts": self.clock(), "seq": self._seq, **body}
            return self.client.publish(self.topic(message), encode(payload), qos=qos)

    def publish_telemetry(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the current readings now (heartbeat or on change)."""
        with self._state_lock:
            self._advance(time.monotonic())
            body = self.telemetry()
        return self._publish_message("telemetry", body, self.telemetry_qos)

    def emit_event(self, name: str, **attrs: Any) -> mqtt.MQTTMessageInfo | None:
        """Publish an event ``{"ts", "seq", "event": name, **attrs}`` at QoS 1."""
        return self._publish_message("event", {"event": name, **attrs}, 1)

    def _heartbeat(self) -> None:
        self._heartbeat_timer = self.after(self.expect_every_s, self._heartbeat)
        if self.battery_pct > 5.0 and self.rng.random() < 0.05:
            self.battery_pct = round(self.battery_pct - 0.1, 1)
        self.publish_telemetry()

    # -- faults on demand -----------------------------------------------------------------------

    def go_silent(self) -> None:
        """Stop publishing anything (and answering commands) but keep the connection open."""
        self._silent = True

    def resume(self) -> None:
        """Undo ``go_silent()`` and report at once."""
        self._silent = False
        self.publish_telemetry()

    def disconnect_abruptly(self, reconnect: bool = True) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT, so the broker fires the will.

        With ``reconnect`` the client comes back by itself after its reconnect delay (1 s at
        first); without it the device stays away until ``reconnect()``.
        """
        if not reconnect:
            # Stop the network thread first (it leaves the socket open), so nothing reconnects.
            self.client.loop_stop()
            self._away = True
        sock = self.client.socket()
        self._connected.clear()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if not reconnect:
            # Close the socket and the thread's wake-up socket pair, which the client's next
            # loop_start() would replace without closing.
            reset = getattr(self.client, "_reset_sockets", None)
            if reset is not None:
                reset()
            elif isinstance(sock, socket.socket):
                sock.close()

    def reconnect(self) -> None:
        """Come back after ``disconnect_abruptly(reconnect=False)``."""
        if not self._away:
            return
        self._away = False
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def send_garbage(self, payload: bytes = GARBAGE) -> mqtt.MQTTMessageInfo:
        """Publish bytes that are not JSON on the telemetry topic."""
        return self.client.publish(self.topic("telemetry"), payload, qos=1)

    # -- MQTT callbacks -------------------------------------------------------------------------

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Acks are small packets written back to back: without this, Nagle's algorithm holds the
        # second one until the broker's delayed ACK (tens of milliseconds).
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            log.warning("%s: connection refused: %s", self.device_id, reason_code)
            return
        client.publish(self.topic("status"), ONLINE, qos=1, retain=True)
        if self.command_handlers:
            client.subscribe(self.topic("cmd"), qos=1)
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic("cmd"):
            self.handle_command(msg.payload)

    # -- commands ---------------------------------------------------------------------------------

    def handle_command(self, raw: bytes) -> str | None:
        """Verify, execute and ack one command; returns the error sent back (``None``: ok)."""
        if self._silent:
            return None
        now = self.clock()
        try:
            cmd: Any = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            cmd = None
        cmd_id = cmd.get("id") if isinstance(cmd, dict) else None
        handler: CommandHandler | None = None
        if not self.secret:
            error: str | None = signing.BAD_SIGNATURE
        else:
            with self._state_lock:
                self._forget_expired_ids(now)
                error = signing.verify(
                    cmd,
                    self.device_id,
                    self.secret,
                    now,
                    self.boot_ms,
                    self._seen_ids,
                    self.command_rule,
                )
                if error is None:
                    assert isinstance(cmd, dict)
                    handler = self.command_handlers.get(cmd.get("action"))
                    if handler is None:
                        error = signing.UNKNOWN_ACTION
                    else:
                        self._seen_ids[cmd["id"]] = signing.remember_until_ms(
                            cmd, self.command_rule
                        )
        if error is not None:
            self._ack(cmd_id, error)
            if error in signing.TAMPER_ERRORS:
                self.emit_event("tamper", reason=error, command_id=_printable_id(cmd_id))
            return error
        assert isinstance(cmd, dict)
        assert handler is not None
        args = cmd.get("args")
        outcome = handler(args if isinstance(args, dict) else {})
        if isinstance(outcome, str):
            with self._state_lock:
                self._seen_ids.pop(cmd["id"], None)
            self._ack(cmd_id, outcome)
            return outcome
        # Ack first, then act: the effect publishes its events and schedules anything slow.
        self._ack(cmd_id, None)
        if outcome is not None:
            outcome()
        return None

    def _forget_expired_ids(self, now: int) -> None:
        # a full sweep at most once a second: per command it cost a door a tenth of its time
        # with 50 residents at once (ids are kept a little longer, never shorter)
        if not self._seen_ids or now < self._next_sweep_ms:
            return
        self._next_sweep_ms = now + 1000
        stale = [i for i, until in self._seen_ids.items() if until < now]
        for i in stale:
            del self._seen_ids[i]

    def _ack(self, cmd_id: Any, error: str | None) -> None:
        body: dict[str, Any] = {"id": _printable_id(cmd_id), "ok": error is None}
        if error is not None:
            body["error"] = error
        body["ts"] = self.clock()
        self.client.publish(self.topic("ack"), encode(body), qos=1)
        self.acks_sent += 1


def _printable_id(cmd_id: Any) -> str | None:
    return cmd_id if isinstance(cmd_id, str) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")
