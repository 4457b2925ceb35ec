"""A whole simulated community: gates, entrances, parking, meters, lockers, each its own device.

Ids are deterministic, and so are the per-device secrets (derived from a seed), so that the
registry written by ``registry_toml()`` matches the devices of any later run with the same options:

- community gates (access, building ""): ``gate-north``, ``gate-south``, ``gate-east``,
  ``gate-west``, then ``gate-5``...;
- building entrances (access): ``b1-entrance`` ... ``bN-entrance`` (one building per entrance);
- parking: space sensors ``p-001``..., barrier gates ``barrier-1``..., the counter ``lot-1``;
- meters, three per unit (electricity, water, gas): ``m-b1-0101``, ``w-b1-0101``, ``g-b1-0101``,
  then unit ``b2-0101``... (units go round the buildings);
- parcel locker banks: ``locker-1``...
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firmware_stubs.device import Scheduler, SimDevice
from firmware_stubs.door import DoorController
from firmware_stubs.locker import LockerBank
from firmware_stubs.meter import ElectricityMeter, GasMeter, WaterMeter
from firmware_stubs.parking import BarrierGate, LotCounter, ParkingLot, SpaceSensor

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
GATE_NAMES = ("north", "south", "east", "west")
ROOMS_PER_FLOOR = 4
MIN_FLOORS = 6
# Public on purpose: simulated devices only. Pass your own seed for anything shared.
DEFAULT_SECRET_SEED = "courtyard-simulated-community"  # noqa: S105


def derive_secret(seed: str, community: str, device_id: str) -> str:
    """A device's command secret: 64 hex digits, a function of the seed and its identity."""
    message = f"{community}/{device_id}".encode()
    return hmac.new(seed.encode(), message, hashlib.sha256).hexdigest()


def gate_ids(n: int) -> list[str]:
    return [f"gate-{GATE_NAMES[i]}" if i < len(GATE_NAMES) else f"gate-{i + 1}" for i in range(n)]


def unit_ids(buildings: list[str], count: int) -> list[str]:
    """``count`` units spread evenly over ``buildings``: ``b1-0101``, ``b2-0101``, ...

    Units are numbered floor then room (``0203``: floor 2, room 3), 4 rooms a floor.
    """
    out = []
    for i in range(count):
        building = buildings[i % len(buildings)]
        k = i // len(buildings)
        floor, room = divmod(k, ROOMS_PER_FLOOR)
        out.append(f"{building}-{floor + 1:02d}{room + 1:02d}")
    return out


def _toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def load_credentials(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``[accounts]`` table of a credentials file (``courtyard broker-config`` writes one):
    account name -> password; a device's account is its id."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    accounts = data.get("accounts")
    if not isinstance(accounts, dict):
        raise ValueError(f"{path}: no [accounts] table")
    return {str(name): str(password) for name, password in accounts.items()}


class Community:
    """A simulated community of ~110 devices (at the defaults) on one broker."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        prefix: str = "community",
        community: str = "c1",
        name: str = "Riverside Gardens",
        gates: int = 2,
        entrances: int = 4,
        spaces: int = 40,
        meters: int = 60,
        lockers: int = 2,
        barriers: int = 1,
        rate_scale: float = 1.0,
        secret_seed: str = DEFAULT_SECRET_SEED,
        telemetry_qos: int = 1,
        username: str | None = None,
        password: str | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        if min(gates, entrances, spaces, meters, lockers, barriers) < 0:
            raise ValueError("device counts must not be negative")
        if not ID_RE.fullmatch(community):
            raise ValueError(f"community id {community!r} does not match {ID_RE.pattern}")
        if not prefix or any(ch in prefix for ch in "+#") or prefix.endswith("/"):
            raise ValueError(f"bad topic prefix {prefix!r}")
        self.host = host
        self.port = port
        self.prefix = prefix
        self.community = community
        self.name = name
        self.rate_scale = rate_scale
        self.secret_seed = secret_seed
        self.scheduler = Scheduler(f"community-{community}")
        self.devices: dict[str, SimDevice] = {}
        self.buildings = [f"b{i}" for i in range(1, max(1, entrances) + 1)]
        # per-device broker accounts (device id -> password): each device logs in as itself
        self.credentials = credentials

        n_units = max(len(self.buildings) * MIN_FLOORS * ROOMS_PER_FLOOR, math.ceil(meters / 3))
        self.units = unit_ids(self.buildings, n_units)
        self._common: dict[str, Any] = {
            "host": host,
            "port": port,
            "community": community,
            "prefix": prefix,
            "rate_scale": rate_scale,
            "seed": secret_seed,
            "scheduler": self.scheduler,
            "telemetry_qos": telemetry_qos,
            "username": username,
            "password": password,
        }

        for gate_id in gate_ids(gates):
            self._add(DoorController(gate_id, units=self.units, **self._kw(gate_id)))
        for building in self.buildings[:entrances]:
            door_id = f"{building}-entrance"
            units = [u for u in self.units if u.startswith(f"{building}-")]
            self._add(
                DoorController(
                    door_id,
                    units=units,
                    mean_access_s=180.0,
                    mean_exit_s=300.0,
                    **self._kw(door_id, building=building),
                )
            )

        width = max(3, len(str(spaces)))
        sensors = [
            SpaceSensor(f"p-{i:0{width}d}", **self._kw(f"p-{i:0{width}d}"))
            for i in range(1, spaces + 1)
        ]
        for sensor in sensors:
            self._add(sensor)
        barrier_list = [
            BarrierGate(f"barrier-{i}", **self._kw(f"barrier-{i}")) for i in range(1, barriers + 1)
        ]
        for barrier in barrier_list:
            self._add(barrier)
        counter = None
        if spaces:
            counter = LotCounter("lot-1", total_spaces=spaces, **self._kw("lot-1"))
            self._add(counter)
        self.parking = ParkingLot(
            sensors,
            barrier_list[0] if barrier_list else None,
            counter,
            self.scheduler,
            rate_scale=rate_scale,
            seed=secret_seed,
        )

        kinds = (("m", ElectricityMeter), ("w", WaterMeter), ("g", GasMeter))
        for i in range(meters):
            unit = self.units[i // 3]
            letter, meter_cls = kinds[i % 3]
            meter_id = f"{letter}-{unit}"
            building = unit.split("-", 1)[0]
            self._add(meter_cls(meter_id, unit=unit, **self._kw(meter_id, building=building)))

        for i in range(1, lockers + 1):
            locker_id = f"locker-{i}"
            self._add(
                LockerBank(
                    locker_id,
                    compartments=24 if i % 2 else 36,
                    units=self.units,
                    **self._kw(locker_id),
                )
            )
        self._started = False

    def _kw(self, device_id: str, building: str = "") -> dict[str, Any]:
        kw = {
            **self._common,
            "building": building,
            "secret": derive_secret(self.secret_seed, self.community, device_id),
        }
        if self.credentials is not None:
            if device_id not in self.credentials:
                raise ValueError(f"no broker password for {device_id} in the credentials")
            kw["username"], kw["password"] = device_id, self.credentials[device_id]
        return kw

    def _add(self, device: SimDevice) -> None:
        if device.device_id in self.devices:
            raise ValueError(f"duplicate device id {device.device_id}")
        self.devices[device.device_id] = device

    # -- queries ----------------------------------------------------------------------------

    def secret(self, device_id: str) -> str:
        secret = self.devices[device_id].secret
        assert secret is not None
        return secret

    def of_class(self, device_class: str) -> list[SimDevice]:
        return [d for d in self.devices.values() if d.device_class == device_class]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, wait_s: float | None = None) -> bool:
        """Connect every device and start the simulation; with ``wait_s``, wait until all are
        connected and return whether they are."""
        if not self._started:
            self._started = True
            self.scheduler.start()
            for device in self.devices.values():
                device.start()
            self.parking.start()
        if wait_s is None:
            return True
        return self.wait_connected(wait_s)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        for device in self.devices.values():
            if not device.wait_connected(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Each device publishes its retained offline status, then disconnects cleanly."""
        if not self._started:
            return
        self._started = False
        self.parking.stop()
        for device in self.devices.values():
            device.halt()
        offline = [(device, device.announce_offline()) for device in self.devices.values()]
        for device, info in offline:
            device.close(info, timeout)
        self.scheduler.stop()

    def __enter__(self) -> Community:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- registry ---------------------------------------------------------------------------

    def registry_toml(self) -> str:
        """The community file (CONTRACT.md section 4) describing these devices and secrets."""
        lines = [
            f"# Simulated community {self.community}: {len(self.devices)} devices.",
            "# Generated by firmware_stubs; the secrets derive from the simulator's secret seed.",
            "",
            "[[communities]]",
            f"id = {_toml_str(self.community)}",
            f"name = {_toml_str(self.name)}",
            "",
        ]
        for building in self.buildings:
            lines += [
                "[[buildings]]",
                f"id = {_toml_str(building)}",
                f"community = {_toml_str(self.community)}",
                "",
            ]
        for device in self.devices.values():
            lines += [
                f"# {device.describe()}",
                "[[devices]]",
                f"id = {_toml_str(device.device_id)}",
                f"community = {_toml_str(self.community)}",
                f"class = {_toml_str(device.device_class)}",
                f"building = {_toml_str(device.building)}",
                f"secret = {_toml_str(device.secret or '')}",
                f"expect_every_s = {device.expect_every_s}",
            ]
            if device.command_handlers:  # what the gateway's timed-out answers may promise
                lines.append(f"command_rule = {device.command_rule}")
            lines.append("")
        return "\n".join(lines)

    def write_registry(self, path: str | os.PathLike[str]) -> Path:
        """Write ``registry_toml()`` to ``path`` atomically (a reader never sees half a file)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(self.registry_toml(), encoding="utf-8")
        tmp.replace(target)
        return target
