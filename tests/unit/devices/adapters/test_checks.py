"""Checks across every adapter at once (as zigbee-herdsman-converters' checks.test.ts runs
over every definition): names in the vocabulary, events known to their class, stable
reasons, subscriptions that cover what the adapter reads, one fixture per adapter."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest

from devices.adapters import ADAPTERS, dahua_vto, lorawan, shelly, tasmota, zigbee2mqtt
from devices.adapters.vocabulary import FIELDS, known_event, unit
from devices.model import DEVICE_CLASSES
from tests.unit.devices.adapters.fixtures import ALL, Fixture

CONTRACT_NAMES = {
    *("zigbee2mqtt", "tasmota", "shelly", "chirpstack", "tts", "dahua-vto"),
    *("modbus", "dlt645", "cjt188", "lockboard"),
}
DECODED = {key: ADAPTERS[f.adapter].decode(f.topic, f.payload, f.options) for key, f in ALL.items()}


def test_registry_names_are_the_contracts_and_sorted() -> None:
    http = ["2n-lpr", "hikvision", "hikvision-anpr", "vzenith"]
    assert set(ADAPTERS) == CONTRACT_NAMES | set(http)
    assert list(ADAPTERS) == sorted(set(ADAPTERS) - set(http)) + sorted(http)
    assert all(name == adapter.name for name, adapter in ADAPTERS.items())


@pytest.mark.parametrize("adapter", sorted(CONTRACT_NAMES))
def test_every_adapter_has_fixtures_that_decode_to_messages(adapter: str) -> None:
    kinds = {
        m.kind for key, out in DECODED.items() if ALL[key].adapter == adapter for m in out.messages
    }
    assert kinds & {"telemetry", "event", "request"}, kinds


@pytest.mark.parametrize("key", sorted(ALL))
def test_readings_are_in_the_vocabulary_or_follow_the_suffix_rule(key: str) -> None:
    for message in DECODED[key].messages:
        for name in message.readings:
            assert unit(name) is not None, f"{key}: {name} has no unit and is not a known name"


@pytest.mark.parametrize("key", sorted(ALL))
def test_events_are_known_to_their_class(key: str) -> None:
    out = DECODED[key]
    assert out.device_class in (*DEVICE_CLASSES, "")
    for message in out.messages:
        if message.kind == "event":
            assert message.event is not None
            assert known_event(out.device_class, message.event), (key, message.event)


def test_vocabulary_units() -> None:
    assert unit("energy_kwh") == "kWh"
    assert unit("power_l2_w") == "W"
    assert unit("apparent_power_l3_va") == "VA"
    assert unit("relay_l2_on") == ""
    assert unit("power_factor_l3") == ""
    assert unit("radio_frequency_hz") == "Hz"
    assert unit("snr_db") == "dB"
    assert unit("mystery") is None
    assert unit("relay_2_on") is None
    assert known_event("access", "door_unlocked")
    assert known_event("meter", "leak_detected")
    assert not known_event("parking", "door_unlocked")


SAMPLES: tuple[Any, ...] = (
    1,
    2500.5,
    -3,
    True,
    False,
    "ON",
    "OFF",
    "LOCK",
    "UNLOCK",
    "locked",
    [1, 2, 3],
    {"total": 1500, "tC": 40, "by_minute": [10, 0, 0], "Signal": -60, "RSSI": 70},
)


def _tables(module: ModuleType) -> list[tuple[str, Mapping[str, Callable[..., Any]]]]:
    return [
        (name, value)
        for name, value in vars(module).items()
        if isinstance(value, Mapping)
        and value
        and all(isinstance(k, str) for k in value)
        and all(callable(v) and not isinstance(v, type) for v in value.values())
        and name.isupper()
    ]


@pytest.mark.parametrize(
    "module", [zigbee2mqtt, tasmota, shelly, lorawan], ids=lambda m: m.__name__
)
def test_every_converter_of_every_table_names_vocabulary_readings(module: ModuleType) -> None:
    tables = [
        t for t in _tables(module) if not t[0].endswith(("HANDLERS", "EVENTS", "NOTIFICATIONS"))
    ]
    assert tables, module.__name__
    produced: set[str] = set()
    for table_name, table in tables:
        for key, convert in table.items():
            for sample in SAMPLES:  # a converter meets any JSON value without failing
                for name, value in convert(sample, {key: sample, "power": 5}):
                    produced.add(name)
                    assert unit(name) is not None, (table_name, key, name)
                    assert type(value) in (bool, int, float), (table_name, key, value)
    assert produced & set(FIELDS), module.__name__


def test_dahua_methods_are_the_contracts() -> None:
    assert set(dahua_vto.METHODS.values()) <= {
        *("card", "pin", "face", "qr", "remote", "button", "key", "fingerprint"),
    }


def _matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (``+`` one level, ``#`` the rest)."""
    pattern = "/".join(
        "[^/]*" if level == "+" else ".*" if level == "#" else re.escape(level)
        for level in topic_filter.split("/")
    )
    return re.fullmatch(pattern.replace("/.*", "(/.*)?"), topic) is not None


@pytest.mark.parametrize(
    "key", sorted(k for k, f in ALL.items() if ADAPTERS[f.adapter].transport == "mqtt")
)
def test_subscriptions_cover_every_device_message(key: str) -> None:
    fixture: Fixture = ALL[key]
    out = DECODED[key]
    if all(m.kind == "command" for m in out.messages) and out.messages:
        return  # commands seen on the wire need not be subscribed to
    if out.ignored:
        return
    filters = ADAPTERS[fixture.adapter].subscriptions(fixture.options)
    assert any(_matches(f, fixture.topic) for f in filters), (fixture.topic, filters)
