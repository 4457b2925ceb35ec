"""``[[serial]]`` validation names the key; serial devices join the registry under their bus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, Registry, load_settings
from gateway.fieldbus.bridge import registry_with_serial

SECRET = "ab" * 16


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "c.toml"
    f.write_text(text)
    return f


BASE = """
[[serial]]
id = "bus-b3"
community = "c1"
port = "/dev/ttyUSB0"
protocol = "{protocol}"
parity = "{parity}"

[[serial.devices]]
id = "m-1"
address = "{address}"
model = "{model}"
{extra}
"""


def conf(**kw: Any) -> str:
    values = {"protocol": "modbus-rtu", "parity": "N", "address": "1", "model": "sdm630"}
    values["extra"] = ""
    values.update(kw)
    return BASE.format(**values)


def test_valid_buses(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, conf()), environ={})
    assert s.serial[0].devices[0].model == "sdm630"
    assert s.serial[0].baudrate == 9600 and s.serial[0].bits_per_char == 10
    s = load_settings(
        write(
            tmp_path,
            conf(protocol="dlt645-2007", parity="E", address="000012345678", model="dlt645"),
        ),
        environ={},
    )
    assert s.serial[0].bits_per_char == 11
    s = load_settings(
        write(
            tmp_path,
            conf(
                protocol="cjt188-2004", parity="E", address="78330011223344", model="cjt188-water"
            ),
        ),
        environ={},
    )
    assert s.serial[0].devices[0].device_class == "meter"


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"protocol": "bacnet"}, "serial.0.protocol"),
        ({"parity": "X"}, "serial.0.parity"),
        ({"model": "sdm999"}, "devices.0.model"),
        ({"address": "300"}, "devices.0.address"),
        ({"protocol": "dlt645-2007", "model": "dlt645", "address": "12"}, "devices.0.address"),
        ({"protocol": "kerong-lock-board", "model": "kerong-cu16", "address": "0"}, "secret"),
        ({"extra": 'colour = "red"'}, "serial.0.devices.0.colour"),
        ({"protocol": "cjt188-2004", "model": "cjt188-water", "address": "1"}, "devices.0.address"),
        ({"extra": 'protocol = "dlt645-2007"'}, "devices.0.protocol"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, kw: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, conf(**kw)), environ={})
    assert key in str(exc.value)


def test_duplicate_ids_across_buses(tmp_path: Path) -> None:
    text = conf() + conf().replace('id = "bus-b3"', 'id = "bus-b4"')
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text), environ={})
    assert "m-1" in str(exc.value)


def test_secret_never_printed(tmp_path: Path) -> None:
    text = conf(extra=f'secret = "{SECRET}"')
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text), environ={})
    assert SECRET not in str(exc.value)


def test_registry_has_bus_as_parent(tmp_path: Path) -> None:
    locker = (
        conf(
            protocol="kerong-lock-board",
            model="kerong-cu16",
            address="0",
            extra=f'secret = "{SECRET}"',
        )
        .replace('"bus-b3"', '"bus-lk"')
        .replace('"m-1"', '"lk-1"')
    )
    s = load_settings(write(tmp_path, conf() + locker), environ={})
    reg = registry_with_serial(Registry(), s.serial)
    by_id = reg.by_id()
    assert by_id["m-1"].parent == "bus-b3" and by_id["m-1"].device_class == "meter"
    assert by_id["bus-b3"].parent == "" and by_id["bus-b3"].device_class == "meter"
    assert by_id["lk-1"].device_class == "locker" and by_id["lk-1"].secret == SECRET
    assert by_id["m-1"].expect_every_s is None  # the bridge reports statuses itself
    clash = Registry.model_validate(
        {"devices": [{"id": "m-1", "community": "c1", "class": "meter"}]}
    )
    with pytest.raises(ConfigError):
        registry_with_serial(clash, s.serial)


MAP_FILE = """
function = 4
[[registers]]
field = "voltage_v"
address = 0
unit = "V"
[[registers]]
field = "energy_kwh"
address = 0x48
unit = "kWh"
"""


def test_register_map_file_resolved_and_checked(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "my.toml").write_text(MAP_FILE)
    s = load_settings(write(tmp_path, conf(model="maps/my.toml")), environ={})
    model = s.serial[0].devices[0].model
    assert model == str(tmp_path / "maps" / "my.toml")
    (tmp_path / "maps" / "bad.toml").write_text(MAP_FILE.replace("0x48", "-1"))
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, conf(model="maps/bad.toml")), environ={})
    assert "serial.0.devices.0.model" in str(exc.value) and "registers[1].address" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, conf(model="maps/none.toml")), environ={})
    assert "cannot read" in str(exc.value)
