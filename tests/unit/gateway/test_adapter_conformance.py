"""Every adapter's output on every fixture passes the validation native messages meet (the
device profiles of its class): nothing an adapter decodes is dead-lettered by the gateway."""

from __future__ import annotations

import json

import pytest

from devices.adapters import ADAPTERS
from devices.decode import decode
from devices.topics import Topic
from gateway.adapters.binding import native_payloads
from tests.unit.devices.adapters import http_payloads as hp
from tests.unit.devices.adapters.fixtures import ALL

NOW = 1_724_672_000_000

HTTP = {
    "hikvision-card": ("hikvision", "application/json", json.dumps(hp.HIK_CARD_PASS).encode()),
    "hikvision-duress": ("hikvision", "application/json", json.dumps(hp.HIK_DURESS).encode()),
    "hikvision-held": ("hikvision", "application/json", json.dumps(hp.HIK_DOOR_HELD).encode()),
    "hikvision-other": ("hikvision", "application/json", json.dumps(hp.HIK_UNMAPPED).encode()),
    "hikvision-tamper": ("hikvision", "application/json", json.dumps(hp.HIK_TAMPER).encode()),
    "hikvision-remote": ("hikvision", "application/json", json.dumps(hp.HIK_REMOTE_OPEN).encode()),
    "anpr": ("hikvision-anpr", "application/xml", hp.ANPR_DETECTED),
    "anpr-unknown": ("hikvision-anpr", "application/xml", hp.ANPR_UNKNOWN),
}


def check(adapter: str, where: str, payload: bytes, options: dict[str, str]) -> int:
    adapted = ADAPTERS[adapter].decode(where, payload, options)
    checked = 0
    for kind, body in native_payloads(adapted):
        # a message that does not tell its class goes to a bound device of any class
        topic = Topic("c1", adapted.device_class or "meter", "d1", kind)
        decoded = decode(topic, body, NOW)
        assert decoded.kind == kind
        checked += 1
    return checked


@pytest.mark.parametrize(
    "name", sorted(n for n, f in ALL.items() if ADAPTERS[f.adapter].transport == "mqtt")
)
def test_mqtt_fixtures_pass_the_gateways_validation(name: str) -> None:
    f = ALL[name]
    check(f.adapter, f.topic, f.payload, dict(f.options))


@pytest.mark.parametrize("name", sorted(HTTP))
def test_http_pushes_pass_the_gateways_validation(name: str) -> None:
    adapter, content_type, body = HTTP[name]
    assert check(adapter, content_type, body, {}) >= 1
