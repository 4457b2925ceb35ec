"""The simulated community's layout and the registry it writes (CONTRACT.md section 4)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from firmware_stubs.community import Community, derive_secret, unit_ids
from firmware_stubs.door import DoorController

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def test_default_community_layout() -> None:
    c = Community()
    assert len(c.devices) == 110
    classes = Counter(d.device_class for d in c.devices.values())
    assert classes == {"access": 6, "parking": 42, "meter": 60, "locker": 2}
    for device_id in (
        "gate-north",
        "gate-south",
        "b1-entrance",
        "b4-entrance",
        "p-001",
        "p-040",
        "barrier-1",
        "lot-1",
        "m-b1-0101",
        "w-b2-0101",
        "g-b4-0201",
        "locker-1",
        "locker-2",
    ):
        assert device_id in c.devices, device_id
    assert all(ID_RE.match(i) for i in c.devices)
    assert c.devices["gate-north"].building == ""
    assert c.devices["b3-entrance"].building == "b3"
    assert c.devices["m-b2-0101"].building == "b2"
    assert isinstance(c.devices["gate-north"], DoorController)


def test_registry_parses_and_matches_the_devices(tmp_path: Path) -> None:
    c = Community(
        gates=3,
        entrances=2,
        spaces=5,
        meters=7,
        lockers=1,
        rate_scale=2.0,
        community="c9",
        name='Quote "Court" \\ Yard',
    )
    data = tomllib.loads(c.registry_toml())
    assert data["communities"] == [{"id": "c9", "name": 'Quote "Court" \\ Yard'}]
    assert data["buildings"] == [{"id": "b1", "community": "c9"}, {"id": "b2", "community": "c9"}]
    devices = {d["id"]: d for d in data["devices"]}
    assert set(devices) == set(c.devices)
    for device_id, entry in devices.items():
        device = c.devices[device_id]
        keys = {"id", "community", "class", "building", "secret", "expect_every_s"}
        if device.command_handlers:  # doors, barriers, lockers: stubs of command rule 2
            assert entry["command_rule"] == 2
            keys.add("command_rule")
        assert set(entry) == keys
        assert entry["community"] == "c9"
        assert entry["class"] == device.device_class
        assert entry["building"] == device.building
        assert re.fullmatch(r"[0-9a-f]{64}", entry["secret"])
        assert entry["secret"] == device.secret
        assert entry["expect_every_s"] == device.expect_every_s
    assert devices["gate-east"]["expect_every_s"] == 15  # 30 s at rate 2
    assert devices["m-b1-0101"]["expect_every_s"] == 30
    path = c.write_registry(tmp_path / "community.toml")
    assert tomllib.loads(path.read_text(encoding="utf-8")) == data
    assert list(tmp_path.iterdir()) == [path]


def test_secrets_are_deterministic_and_depend_on_the_seed() -> None:
    a = Community(secret_seed="s1", spaces=1, meters=1)
    b = Community(secret_seed="s1", spaces=1, meters=1)
    other = Community(secret_seed="s2", spaces=1, meters=1)
    assert a.registry_toml() == b.registry_toml()
    assert a.secret("gate-north") == derive_secret("s1", "c1", "gate-north")
    assert a.secret("gate-north") != other.secret("gate-north")
    assert a.secret("gate-north") != a.secret("gate-south")


def test_units_spread_over_buildings() -> None:
    assert unit_ids(["b1", "b2"], 10) == [
        "b1-0101",
        "b2-0101",
        "b1-0102",
        "b2-0102",
        "b1-0103",
        "b2-0103",
        "b1-0104",
        "b2-0104",
        "b1-0201",
        "b2-0201",
    ]


def test_big_meter_counts_get_more_floors() -> None:
    c = Community(gates=0, entrances=1, spaces=0, meters=300, lockers=0, barriers=0)
    meters = [d for d in c.devices if d.startswith("m-")]
    assert len(meters) == 100 and len(set(meters)) == 100
    assert "lot-1" not in c.devices


def test_empty_community() -> None:
    c = Community(gates=0, entrances=0, spaces=0, meters=0, lockers=0, barriers=0)
    assert c.devices == {}
    assert tomllib.loads(c.registry_toml())["buildings"] == [{"id": "b1", "community": "c1"}]


@pytest.mark.parametrize(
    "kwargs", [{"community": "C1"}, {"community": ""}, {"prefix": "a/#"}, {"gates": -1}]
)
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Community(**kwargs)
