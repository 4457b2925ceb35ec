"""``[[serial]]`` buses and their ``[[serial.devices]]``: typed, validated at start-up.

Part of :class:`gateway.config.Settings` (key ``serial``); an error names the key, e.g.
``serial.0.devices.3.address``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

if TYPE_CHECKING:
    from devices.serial.registers import MeterMap

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Protocol = Literal["modbus-rtu", "dlt645-2007", "cjt188-2004", "kerong-lock-board"]
MODELS: dict[str, tuple[str, ...]] = {
    "modbus-rtu": ("sdm630", "sdm120", "ddsu666", "dtsu666"),
    "dlt645-2007": ("dlt645",),
    "cjt188-2004": ("cjt188-water", "cjt188-gas"),
    "kerong-lock-board": ("kerong-cu16",),
}
"""Which device models each protocol carries."""
LOCKER_PROTOCOLS = ("kerong-lock-board",)
OWN_BUS = ("dlt645-2007", "cjt188-2004")
"""Protocols whose frames (68 ... 16, usually 8E1) share a wire with no other protocol."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SerialDevice(_Section):
    id: Ident
    address: str
    model: str
    secret: str = Field(default="", repr=False)
    building: str = ""
    name: str = ""
    protocol: Protocol | None = None
    """Another protocol than the bus's, on the same wire (a lock board among Modbus meters:
    the frames cannot be mistaken for each other). Default: the bus's protocol."""

    @property
    def device_class(self) -> str:
        return "locker" if self.model == "kerong-cu16" else "meter"


def _check_address(protocol: str, address: str) -> str:
    if protocol == "modbus-rtu":
        if not address.isdigit() or not 1 <= int(address) <= 247:
            return "expected a Modbus slave id 1..247"
    elif protocol == "dlt645-2007":
        if not re.fullmatch(r"[0-9]{12}", address):
            return "expected the meter's 12-digit address, e.g. 000012345678"
    elif protocol == "cjt188-2004":
        if not re.fullmatch(r"[0-9a-fA-F]{14}", address):
            return "expected the meter's 14-digit address, most significant first"
    elif not address.isdigit() or not 0 <= int(address) <= 15:
        return "expected a lock board address 0..15"
    return ""


class SerialBus(_Section):
    id: Ident
    community: Ident
    port: str
    baudrate: int = Field(default=9600, ge=300, le=921600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    protocol: Protocol
    poll_every_s: float = Field(default=15, gt=0, le=86400)
    timeout_ms: float = Field(default=500, gt=0, le=10000)
    """How long to wait for a reply."""
    retries: int = Field(default=1, ge=0, le=5)
    """Immediate retries of a transaction after a CRC/checksum error or garbage."""
    offline_after: int = Field(default=3, ge=1, le=1000)
    """Failed poll cycles in a row before a device is reported offline."""
    left_open_after_s: float = Field(default=120, gt=0)
    """Lockers: a compartment open this long raises ``compartment_left_open``."""
    building: str = ""
    devices: list[SerialDevice] = []

    @model_validator(mode="after")
    def _devices(self) -> SerialBus:
        seen: set[str] = set()
        addresses: set[str] = set()
        for i, d in enumerate(self.devices):
            where = f"devices.{i}"
            protocol = self.protocol_of(d)
            if protocol != self.protocol and (protocol in OWN_BUS or self.protocol in OWN_BUS):
                raise ValueError(f"{where}.protocol: {protocol} cannot share a {self.protocol} bus")
            is_file = protocol == "modbus-rtu" and d.model.endswith(".toml")
            if d.model not in MODELS[protocol] and not is_file:
                allowed = " | ".join(MODELS[protocol])
                allowed += " | a register-map file (.toml)" if protocol == "modbus-rtu" else ""
                raise ValueError(f"{where}.model = {d.model!r}: {protocol} carries {allowed}")
            problem = _check_address(protocol, d.address)
            if problem:
                raise ValueError(f"{where}.address = {d.address!r}: {problem}")
            key = protocol + (str(int(d.address)) if d.address.isdigit() else d.address)
            if key in addresses:
                raise ValueError(f"{where}.address = {d.address!r}: used twice on this bus")
            addresses.add(key)
            if d.id in seen or d.id == self.id:
                raise ValueError(f"{where}.id = {d.id!r}: duplicate device id")
            seen.add(d.id)
            if protocol in LOCKER_PROTOCOLS:
                if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){16,}", d.secret):
                    raise ValueError(
                        f"{where}.secret: a locker needs its command secret"
                        " (hex, 32 or more digits)"
                    )
            elif d.secret:
                raise ValueError(f"{where}.secret: only lockers take commands")
        return self

    def protocol_of(self, device: SerialDevice) -> str:
        return device.protocol or self.protocol

    @property
    def device_class(self) -> str:
        """The class the bus itself is registered with: that of the devices it carries."""
        return "locker" if self.protocol in LOCKER_PROTOCOLS else "meter"

    @property
    def bits_per_char(self) -> int:
        return 1 + 8 + (0 if self.parity == "N" else 1) + self.stopbits


def check_unique(buses: list[SerialBus]) -> None:
    """Bus and device ids are unique across every bus (raises ValueError)."""
    seen: set[str] = set()
    for b, bus in enumerate(buses):
        for i, name in enumerate([bus.id, *(d.id for d in bus.devices)]):
            where = f"serial.{b}" + ("" if i == 0 else f".devices.{i - 1}")
            if name in seen:
                raise ValueError(f"{where}.id = {name!r}: duplicate id across [[serial]]")
            seen.add(name)


def parse_buses(tables: list[dict[str, Any]]) -> list[SerialBus]:
    """``[[serial]]`` tables (e.g. a simulated room's ``serial_config()``) -> validated buses,
    for ``settings.model_copy(update={"serial": ...})``. Raises ValueError."""
    buses = [SerialBus.model_validate(t) for t in tables]
    check_unique(buses)
    return buses


def load_map_file(path: str) -> MeterMap:
    """Read and check a register-map file (``devices.serial.registers.map_from_table``)."""
    from devices.serial.registers import map_from_table  # the codecs stay out of config imports

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return map_from_table(path, data)


def resolve_map_files(buses: list[SerialBus], base: Path) -> list[SerialBus]:
    """Register-map file models made absolute (against the config file's folder) and checked
    now, so that a bad file stops start-up naming its key. Raises ValueError."""
    out = []
    for b, bus in enumerate(buses):
        devices = []
        for i, d in enumerate(bus.devices):
            if d.model.endswith(".toml") and d.model not in MODELS[bus.protocol_of(d)]:
                path = str(base / d.model) if not Path(d.model).is_absolute() else d.model
                try:
                    load_map_file(path)
                except ValueError as exc:
                    raise ValueError(f"serial.{b}.devices.{i}.model = {d.model!r}: {exc}") from None
                d = d.model_copy(update={"model": path})
            devices.append(d)
        out.append(bus.model_copy(update={"devices": devices}))
    return out
