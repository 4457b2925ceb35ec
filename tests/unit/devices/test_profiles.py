"""Rules that hold across every profile at once, and command argument checks."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from devices import PROFILES, Rejected
from devices.model import DEVICE_CLASSES
from devices.profile import (
    NAME_RE,
    AttrType,
    FieldKind,
    FieldSpec,
    FieldType,
    make_profile,
    unit_from_name,
)
from devices.profiles.meter import electricity_meter, gas_meter, water_meter

ALL = sorted(PROFILES.items())


def test_every_device_class_has_a_profile() -> None:
    assert set(PROFILES) == set(DEVICE_CLASSES)
    for name, profile in ALL:
        assert profile.device_class == name


@pytest.mark.parametrize(("name", "profile"), ALL)
def test_fields_are_complete(name: str, profile: Any) -> None:
    assert profile.fields, name
    for key, spec in profile.fields.items():
        assert key == spec.name
        assert NAME_RE.fullmatch(key), key
        assert isinstance(spec.unit, str)
        assert spec.type in get_args(FieldType)
        assert spec.kind in get_args(FieldKind)
        if spec.kind == "counter":
            assert spec.type == "number", f"{name}.{key}: a counter must be numeric"
        if spec.type == "bool":
            assert spec.unit == "", f"{name}.{key}: booleans have no unit"
        elif unit_from_name(key):
            assert spec.unit == unit_from_name(key), f"{name}.{key}: unit disagrees with name"


@pytest.mark.parametrize(("name", "profile"), ALL)
def test_events_and_commands_are_typed(name: str, profile: Any) -> None:
    assert "tamper" in profile.events
    for key, event in profile.events.items():
        assert key == event.name and NAME_RE.fullmatch(key)
        assert len({a.name for a in event.attrs}) == len(event.attrs)
        for attr in event.attrs:
            assert NAME_RE.fullmatch(attr.name)
            assert attr.name not in ("ts", "seq", "event")
            assert attr.type in get_args(AttrType), f"{name}.{key}.{attr.name}"
            assert not attr.choices or attr.type == "string"
    for action, command in profile.commands.items():
        assert action == command.action and NAME_RE.fullmatch(action)
        assert command.args, f"{name}.{action} has no arguments"
        for arg in command.args:
            assert arg.type in get_args(AttrType), f"{name}.{action}.{arg.name}"
            assert arg.required


def test_contract_units() -> None:
    units = {k: s.unit for p in PROFILES.values() for k, s in p.fields.items()}
    assert units["energy_kwh"] == "kWh"
    assert units["power_w"] == "W"
    assert units["voltage_v"] == "V"
    assert units["current_a"] == "A"
    assert units["volume_m3"] == "m3"
    assert units["flow_m3h"] == "m3/h"
    assert units["battery_pct"] == "%"
    assert PROFILES["meter"].kind("energy_kwh") == "counter"
    assert PROFILES["meter"].kind("volume_m3") == "counter"
    assert PROFILES["meter"].kind("power_w") == "gauge"
    assert PROFILES["meter"].kind("something_new") == "gauge"


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("a_kwh", "kWh"),
        ("a_w", "W"),
        ("a_v", "V"),
        ("a_a", "A"),
        ("a_m3", "m3"),
        ("a_m3h", "m3/h"),
        ("a_pct", "%"),
        ("a_s", "s"),
        ("a_c", "°C"),
        ("count", ""),
    ],
)
def test_unit_from_name(name: str, unit: str) -> None:
    assert unit_from_name(name) == unit


def test_bundles_compose_and_conflicts_fail() -> None:
    meter = make_profile("m", fields=(electricity_meter(), water_meter(), gas_meter()))
    assert list(meter.fields) == [
        *(f.name for f in electricity_meter()),
        "volume_m3",
        "flow_m3h",
    ]
    with pytest.raises(ValueError, match="volume_m3"):
        make_profile("m", fields=(gas_meter(), (FieldSpec("volume_m3", "l"),)))


def test_profiles_are_read_only() -> None:
    with pytest.raises(TypeError):
        PROFILES["meter"].fields["x"] = FieldSpec("x", "")  # type: ignore[index]
    with pytest.raises(TypeError):
        PROFILES["x"] = PROFILES["meter"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("device_class", "action", "args"),
    [
        ("access", "unlock", {"seconds": 1}),
        ("access", "unlock", {"seconds": 30}),
        ("parking", "open_barrier", {"lane": "in-1"}),
        ("locker", "open_compartment", {"compartment": "A3"}),
        ("locker", "open_compartment", {"compartment": 12}),
        ("parking", "open_barrier", {"lane": 2}),
    ],
)
def test_command_args_accepted(device_class: str, action: str, args: dict[str, Any]) -> None:
    assert PROFILES[device_class].command_args(action, args) == args


@pytest.mark.parametrize(
    ("device_class", "action", "args", "reason"),
    [
        ("access", "open_barrier", {"lane": "a"}, "unknown_action"),
        ("meter", "unlock", {"seconds": 5}, "unknown_action"),
        ("access", "unlock", {}, "bad_args"),
        ("access", "unlock", {"seconds": 0}, "bad_args"),
        ("access", "unlock", {"seconds": 31}, "bad_args"),
        ("access", "unlock", {"seconds": 5.5}, "bad_args"),
        ("access", "unlock", {"seconds": True}, "bad_args"),
        ("access", "unlock", {"seconds": 10**400}, "bad_args"),
        ("access", "unlock", {"seconds": 5, "force": True}, "bad_args"),
        ("parking", "open_barrier", {"lane": None}, "bad_args"),
        ("locker", "open_compartment", {"compartment": False}, "bad_args"),
        ("locker", "open_compartment", {}, "bad_args"),
    ],
)
def test_command_args_refused(
    device_class: str, action: str, args: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Rejected) as caught:
        PROFILES[device_class].command_args(action, args)
    assert caught.value.reason == reason


def test_adapter_vocabulary_is_accepted_like_native_messages() -> None:
    """CONTRACT.md 7.3: the additions decode through the same validation as native messages."""
    from devices.decode import decode
    from devices.topics import Topic

    now = 1_760_000_000_000

    def event(cls: str, body: bytes) -> dict[str, object]:
        d = decode(Topic("c1", cls, "d1", "event"), body, now)
        return {"event": d.event, **d.attrs}

    assert event("access", b'{"event": "door_held_open"}') == {"event": "door_held_open"}
    assert event("access", b'{"event": "door_unlocked", "method": "fingerprint"}')["method"] == (
        "fingerprint"
    )
    assert event("access", b'{"event": "duress", "person": "1021"}')["person"] == "1021"
    assert event("access", b'{"event": "other", "major": 5, "minor": 19}')["minor"] == 19
    plate = event("parking", b'{"event": "vehicle_entered", "plate": null, "direction": "reverse"}')
    assert plate["plate"] is None
    t = decode(Topic("c1", "meter", "m1", "telemetry"), b'{"leak": true, "power_l2_w": 12}', now)
    assert t.fields == {"leak": True, "power_l2_w": 12.0}
    assert PROFILES["meter"].unit("reactive_power_var") == "var"
    assert PROFILES["access"].unit("rssi_dbm") == "dBm"
    with pytest.raises(Rejected):
        decode(Topic("c1", "meter", "m1", "telemetry"), b'{"leak": "yes"}', now)
    with pytest.raises(Rejected):
        decode(
            Topic("c1", "access", "d1", "event"), b'{"event": "door_unlocked", "method": "x"}', now
        )
