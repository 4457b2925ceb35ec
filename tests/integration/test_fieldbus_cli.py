"""``python -m firmware_stubs meter-room``: ptys behind symlinks, a config the gateway accepts,
meters answering real Modbus frames (read with the gateway's codecs)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import serial

from devices.serial import modbus
from devices.serial.registers import SDM630, decode_block
from gateway.config import load_settings
from tests.support.wait import wait_for


def test_meter_room_cli(tmp_path: Path) -> None:
    out = tmp_path / "serial.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_stubs", "meter-room", "--link", str(tmp_path / "pty"),
         "--sdm630", "2", "--ddsu666", "1", "--dtsu666", "0", "--dlt645", "1", "--lockers", "1",
         "--config-out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(out.exists, timeout=10, what="config written")
        time.sleep(0.2)
        settings = load_settings(out, environ={})
        assert [b.protocol for b in settings.serial] == [
            "modbus-rtu",
            "dlt645-2007",
            "kerong-lock-board",
        ]
        link = tmp_path / "pty" / "room-modbus"
        assert link.is_symlink() and settings.serial[0].port == str(link)
        block = SDM630.blocks()[1]
        with serial.Serial(str(link), 9600, timeout=1) as port:
            port.write(modbus.read_request(2, block.function, block.address, block.count))
            reply = port.read(5 + 2 * block.count)
        values = decode_block(block, modbus.decode_reply(reply, 2, block.function, block.count))
        assert values["energy_kwh"] > 0 and 49 < values["frequency_hz"] < 51
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert not (tmp_path / "pty" / "room-modbus").exists()
