"""One RS-485 bus on a pseudo-terminal: the stub holds the master side, the gateway opens the
slave path (or the symlink ``link`` to it), as it would open a USB adapter's ``/dev/ttyUSB0``.

A pty has no baud rate, so the bus paces itself like the wire: a reply leaves only after the
request and the reply would have taken on the line at ``baudrate`` with ``bits_per_char`` bits per
byte, plus the device's ``answer_delay_s``. ``unplug()`` closes the pty (the slave path vanishes,
reads fail) and ``replug()`` makes a new one and points the link at it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Literal

from firmware_stubs.serial import wire
from firmware_stubs.serial.devices import CjtMeter, DltMeter, LockBoard, ModbusMeter, SimDevice

Protocol = Literal["modbus-rtu", "dlt645-2007", "cjt188-2004", "kerong-lock-board"]


class PtyBus:
    def __init__(
        self,
        protocol: Protocol | tuple[Protocol, ...],
        devices: list[SimDevice],
        *,
        link: str | os.PathLike[str] | None = None,
        baudrate: int = 9600,
        bits_per_char: int = 10,
        answer_delay_s: float = 0.002,
        pace: bool = True,
    ) -> None:
        self.protocols: tuple[str, ...] = (protocol,) if isinstance(protocol, str) else protocol
        self.devices = devices
        self.link = Path(link) if link else None
        self.baudrate = baudrate
        self.bits_per_char = bits_per_char
        self.answer_delay_s = answer_delay_s
        self.pace = pace
        self.garbage_next = b""
        """Bytes written on the line before the next reply (noise on demand)."""
        self.frames_in = 0
        self.bad_frames_in = 0
        self._master = -1
        self._slave = -1
        self.path = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open_lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Create the pty and answer on it; returns the device path (the link if given)."""
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name=f"pty-bus-{self.path}", daemon=True)
        self._thread.start()
        return str(self.link) if self.link else self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_pty()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def unplug(self) -> None:
        """The adapter pulled out: the pty disappears."""
        with self._open_lock:
            self._close_pty()
            if self.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.link.unlink()

    def replug(self) -> None:
        with self._open_lock:
            self._open_pty()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing before the gateway configures it
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # -- the line --------------------------------------------------------------------------

    def wire_s(self, n_bytes: int) -> float:
        return n_bytes * self.bits_per_char / self.baudrate if self.pace else 0.0

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            fd = self._master
            if fd < 0:
                buf = b""
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except (OSError, ValueError):
                time.sleep(0.02)
                continue
            buf += chunk
            buf = self._consume(buf, time.monotonic())

    def _consume(self, buf: bytes, arrived: float) -> bytes:
        while True:
            frame, buf = self._split(buf)
            if frame is None:
                return buf
            self.frames_in += 1
            self._answer(frame, arrived)

    def _split(self, buf: bytes) -> tuple[bytes | None, bytes]:
        """The first complete request in ``buf`` and the rest; skips bytes that start none."""
        while buf:
            waiting = False
            for protocol in self.protocols:
                n = _match(protocol, buf)
                if n > 0:
                    return buf[:n], buf[n:]
                waiting = waiting or n == 0
            if waiting:
                return None, buf
            self.bad_frames_in += 1
            buf = buf[1:]
        return None, buf

    def _answer(self, frame: bytes, arrived: float) -> None:
        for dev in self.devices:
            if _match(dev.protocol, frame) != len(frame):
                continue
            reply = dev.answer(frame)
            if reply is None:
                continue
            reply = dev.corrupt(reply)
            if reply is None:
                return
            delay = self.answer_delay_s + self.wire_s(len(frame) + len(reply))
            if dev.fault == "slow":
                delay += dev.slow_s
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            noise, self.garbage_next = self.garbage_next, b""
            with contextlib.suppress(OSError):
                os.write(self._master, noise + reply)
            return


def _match(protocol: str, buf: bytes) -> int:
    """Length of the request at the start of ``buf``; 0: maybe, more bytes needed; -1: no."""
    if protocol == "modbus-rtu":
        if len(buf) < 8:
            return 0
        return 8 if wire.crc16(buf[:6]) == int.from_bytes(buf[6:8], "little") else -1
    if protocol in ("dlt645-2007", "cjt188-2004"):
        at, size = (7, 9) if protocol == "dlt645-2007" else (-1, 10)
        i = 0
        while i < len(buf) and buf[i] == 0xFE:
            i += 1
        if i == len(buf):
            return 0
        if buf[i] != 0x68:
            return -1
        if len(buf) < i + size + 1:
            return 0
        end = i + size + 3 + buf[i + size]
        if len(buf) < end:
            return 0
        ok = (at < 0 or buf[i + at] == 0x68) and sum(buf[i : end - 2]) & 0xFF == buf[end - 2]
        return end if ok and buf[end - 1] == 0x16 else -1
    if len(buf) < 5:
        return 0 if buf[0] == 2 else -1
    return 5 if buf[0] == 2 and buf[3] == 3 and sum(buf[:4]) & 0xFF == buf[4] else -1


def meters_of(bus: PtyBus) -> list[ModbusMeter | DltMeter | CjtMeter]:
    return [d for d in bus.devices if isinstance(d, ModbusMeter | DltMeter | CjtMeter)]


def boards_of(bus: PtyBus) -> list[LockBoard]:
    return [d for d in bus.devices if isinstance(d, LockBoard)]
