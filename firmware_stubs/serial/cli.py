"""``python -m firmware_stubs meter-room``: simulated RS-485 buses on ptys until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from firmware_stubs.serial.room import start_room


def add_parser(sub: Any) -> None:
    m = sub.add_parser("meter-room", help="simulated RS-485 meters (and lock boards) on ptys")
    m.add_argument("--link", default="./meter-room", help="folder for the pty symlinks")
    m.add_argument("--name", default="room", help="name in the device and bus ids")
    m.add_argument("--community", default="c1", help='community id (default "c1")')
    for model, default in (("sdm630", 4), ("sdm120", 0), ("ddsu666", 4), ("dtsu666", 2)):
        m.add_argument(f"--{model}", type=int, default=default, help=f"{model} meters")
    m.add_argument("--dlt645", type=int, default=1, help="DL/T 645-2007 meters (own pty, 8E1)")
    m.add_argument("--cjt188", type=int, default=0, help="CJ/T 188 water meters (own pty, 8E1)")
    m.add_argument("--lockers", type=int, default=0, help="16-lock boards")
    m.add_argument("--locks-on-modbus", action="store_true", help="boards share the Modbus pty")
    m.add_argument("--baudrate", type=int, default=9600, help="the wire speed the ptys pace")
    m.add_argument("--poll-every", type=float, default=5.0, help="poll_every_s in the config")
    m.add_argument("--secret-seed", default="courtyard-demo", help="seed of the locker secrets")
    m.add_argument("--config-out", default=None, help="write the [[serial]] TOML here")


def run(args: argparse.Namespace) -> int:
    room = start_room(
        Path(args.link),
        community=args.community,
        name=args.name,
        models=tuple((m, getattr(args, m)) for m in ("sdm630", "sdm120", "ddsu666", "dtsu666")),
        dlt645=args.dlt645,
        cjt188=args.cjt188,
        lockers=args.lockers,
        secret_seed=args.secret_seed,
        baudrate=args.baudrate,
        poll_every_s=args.poll_every,
        locks_on_modbus=args.locks_on_modbus,
    )
    try:
        text = room.toml()
        if args.config_out:
            Path(args.config_out).write_text(text, encoding="utf-8")
        for bus_id, bus in room.buses.items():
            print(f"{bus_id}: {bus.link} -> {bus.path}", flush=True)
        print(text, flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        room.stop()
    print("meter room: stopped", file=sys.stderr, flush=True)
    return 0
