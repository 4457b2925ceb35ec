"""Decoding a fixture as ``courtyard decode`` prints it."""

from __future__ import annotations

from typing import Any

from devices.adapters import ADAPTERS
from tests.unit.devices.adapters.fixtures import Fixture


def decoded(fixture: Fixture) -> dict[str, Any]:
    adapter = ADAPTERS[fixture.adapter]
    return adapter.decode(fixture.topic, fixture.payload, fixture.options).as_json()


def only(fixture: Fixture) -> dict[str, Any]:
    """The one message of a fixture's result."""
    out = decoded(fixture)
    assert len(out["messages"]) == 1, out
    message: dict[str, Any] = out["messages"][0]
    return message
