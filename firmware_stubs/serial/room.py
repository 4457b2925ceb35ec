"""A simulated meter room: RS-485 buses on pseudo-terminals with meters (and a lock board), plus
the ``[[serial]]`` configuration a gateway needs to read them.

``start_room(directory)`` starts the buses and returns a :class:`Room`; ``room.serial_config()``
is the list of ``[[serial]]`` tables (``Settings.serial``), ``room.toml()`` the same as TOML.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_stubs.serial.bus import PtyBus
from firmware_stubs.serial.devices import CjtMeter, DltMeter, LockBoard, ModbusMeter, SimDevice


def locker_secret(seed: str, device: str) -> str:
    return hashlib.sha256(f"{seed}/{device}".encode()).hexdigest()


@dataclass
class Room:
    community: str
    buses: dict[str, PtyBus] = field(default_factory=dict)
    """Bus id -> bus."""
    config: list[dict[str, Any]] = field(default_factory=list)

    def serial_config(self) -> list[dict[str, Any]]:
        return self.config

    def toml(self) -> str:
        lines: list[str] = []
        for bus in self.config:
            lines.append("[[serial]]")
            lines += [f"{k} = {_toml(v)}" for k, v in bus.items() if k != "devices"]
            for dev in bus["devices"]:
                lines += ["", "[[serial.devices]]"]
                lines += [f"{k} = {_toml(v)}" for k, v in dev.items()]
            lines.append("")
        return "\n".join(lines) + "\n"

    def device(self, device_id: str) -> SimDevice:
        for bus_cfg in self.config:
            for i, dev in enumerate(bus_cfg["devices"]):
                if dev["id"] == device_id:
                    return self.buses[bus_cfg["id"]].devices[i]
        raise KeyError(device_id)

    def stop(self) -> None:
        for bus in self.buses.values():
            bus.stop()


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def start_room(
    directory: str | os.PathLike[str],
    *,
    community: str = "c1",
    name: str = "room",
    models: tuple[tuple[str, int], ...] = (("sdm630", 4), ("ddsu666", 4), ("dtsu666", 2)),
    dlt645: int = 1,
    cjt188: int = 0,
    lockers: int = 0,
    secret_seed: str = "courtyard-demo",  # noqa: S107 - derives demo secrets, not a password
    baudrate: int = 9600,
    poll_every_s: float = 5.0,
    pace: bool = True,
    locks_on_modbus: bool = False,
) -> Room:
    """Start the room's buses: one Modbus RTU pty with ``models`` (model, count), one DL/T 645
    pty with ``dlt645`` meters (if any), one CJ/T 188 pty with ``cjt188`` water meters (if any),
    one lock-board pty with ``lockers`` boards (if any).
    Symlinks ``{name}-modbus``, ``-dlt645``, ``-cjt188``, ``-locks`` are made in ``directory``.
    ``locks_on_modbus``: the lock boards share the Modbus wire instead (one master, a priority
    lane for their commands)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    room = Room(community)
    plan: list[tuple[str, str, int, str, list[tuple[str, str, str, SimDevice]]]] = []
    modbus: list[tuple[str, str, str, SimDevice]] = []
    slave = 1
    for model, count in models:
        for _ in range(count):
            dev_id = f"m-{name}-{model}-{slave:03d}"
            modbus.append((dev_id, str(slave), model, ModbusMeter(model=model, slave=slave)))
            slave += 1
    if modbus:
        plan.append(("modbus-rtu", "modbus", 1, "N", modbus))
    dlt = [
        (f"m-{name}-dlt645-{i:03d}", f"{i:012d}", "dlt645", DltMeter(address=f"{i:012d}"))
        for i in range(1, dlt645 + 1)
    ]
    if dlt:
        plan.append(("dlt645-2007", "dlt645", 1, "E", dlt))
    water = [
        (f"w-{name}-cjt188-{i:03d}", f"{i:014d}", "cjt188-water", CjtMeter(address=f"{i:014d}"))
        for i in range(1, cjt188 + 1)
    ]
    if water:
        plan.append(("cjt188-2004", "cjt188", 1, "E", water))
    boards = [(f"lk-{name}-{b}", str(b), "kerong-cu16", LockBoard(board=b)) for b in range(lockers)]
    if boards and locks_on_modbus and modbus:
        plan[0][4].extend(boards)
    elif boards:
        plan.append(("kerong-lock-board", "locks", 1, "N", boards))
    for protocol, suffix, stop, parity, devs in plan:
        bus_id = f"bus-{name}-{suffix}"
        bits = 1 + 8 + (0 if parity == "N" else 1) + stop
        kinds = {d.protocol for *_, d in devs}
        bus = PtyBus(
            tuple(sorted(kinds)),  # type: ignore[arg-type]
            [d for *_, d in devs],
            link=folder / f"{name}-{suffix}",
            baudrate=baudrate,
            bits_per_char=bits,
            pace=pace,
        )
        port = bus.start()
        room.buses[bus_id] = bus
        entries: list[dict[str, Any]] = []
        for dev_id, address, model, _ in devs:
            entry = {"id": dev_id, "address": address, "model": model}
            if model == "kerong-cu16":
                entry["secret"] = locker_secret(secret_seed, dev_id)
                if protocol != "kerong-lock-board":
                    entry["protocol"] = "kerong-lock-board"
            entries.append(entry)
        room.config.append(
            {
                "id": bus_id,
                "community": community,
                "port": port,
                "baudrate": baudrate,
                "parity": parity,
                "protocol": protocol,
                "poll_every_s": poll_every_s,
                "devices": entries,
            }
        )
    return room
