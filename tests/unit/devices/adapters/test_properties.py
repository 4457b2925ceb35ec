"""Property tests: no input makes an adapter raise anything but Rejected, and whatever it
accepts is well formed (finite numbers or booleans, known classes, stable reasons)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.adapters import ADAPTERS
from devices.adapters.base import Adapted
from devices.adapters.convert import REASONS
from devices.adapters.http import HTTP_ADAPTERS
from devices.model import DEVICE_CLASSES, Rejected
from tests.unit.devices.adapters.fixtures import ALL, Fixture

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = sorted(set(ADAPTERS) - set(HTTP_ADAPTERS))  # the HTTP ones: test_http_properties.py


def _fixtures(adapter: str) -> list[Fixture]:
    return [f for f in ALL.values() if f.adapter == adapter]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def _json_of(fixture: Fixture) -> Any:
    try:
        return json.loads(fixture.payload)
    except ValueError:
        return None


KEYS = st.one_of(
    st.sampled_from(sorted({k for f in ALL.values() for k in _keys(_json_of(f))})),
    st.text(max_size=12),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["ON", "OFF", "LOCK", "UNLOCK", "online", "Offline", "80.00", "qg==", "1e400"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=30,
)


def _topics(adapter: str) -> st.SearchStrategy[str]:
    known = sorted({f.topic for f in _fixtures(adapter)})
    return st.one_of(
        st.sampled_from(known),
        st.builds(lambda t, s: f"{t}/{s}", st.sampled_from(known), st.text(max_size=12)),
        st.builds(lambda t, n: t.rsplit("/", n)[0], st.sampled_from(known), st.integers(1, 3)),
        st.text(max_size=40),
    )


def _options(adapter: str) -> st.SearchStrategy[dict[str, str]]:
    known = [dict(f.options) for f in _fixtures(adapter)]
    return st.one_of(
        st.sampled_from(known),
        st.dictionaries(
            st.sampled_from(["base_topic", "full_topic", "topic", "codec", "model", "request"]),
            st.text(max_size=20),
            max_size=2,
        ),
    )


def _check(adapter: str, topic: str, payload: bytes, options: dict[str, str]) -> None:
    try:
        out = ADAPTERS[adapter].decode(topic, payload, options)
    except Rejected as exc:
        assert exc.reason in REASONS, exc.reason
        return
    assert isinstance(out, Adapted)
    assert out.adapter == adapter
    assert out.device_class in (*DEVICE_CLASSES, "")
    assert bool(out.ignored) != bool(out.messages)  # ignored, or messages: never both, never none
    for message in out.messages:
        for value in message.readings.values():
            assert type(value) is bool or (type(value) in (int, float) and math.isfinite(value))
        json.dumps(out.as_json())  # printable by courtyard decode


@pytest.mark.parametrize("adapter", NAMES)
def test_random_bytes(adapter: str) -> None:
    @FAST
    @given(_topics(adapter), st.binary(max_size=200), _options(adapter))
    def run(topic: str, payload: bytes, options: dict[str, str]) -> None:
        _check(adapter, topic, payload, options)

    run()


@pytest.mark.parametrize("adapter", NAMES)
def test_random_json(adapter: str) -> None:
    @FAST
    @given(_topics(adapter), JSONISH, _options(adapter))
    def run(topic: str, value: Any, options: dict[str, str]) -> None:
        _check(adapter, topic, json.dumps(value).encode(), options)

    run()


@pytest.mark.parametrize("adapter", NAMES)
def test_fixtures_with_random_values(adapter: str) -> None:
    """Each fixture with some of its own keys (at any depth of its top level) given random
    values, so that the converters deep in each table meet what they do not expect."""
    fixtures = [f for f in _fixtures(adapter) if isinstance(_json_of(f), dict) and _json_of(f)]
    if not fixtures:  # serial frames: mutate bytes instead
        frames = st.sampled_from(_fixtures(adapter)).flatmap(
            lambda f: st.tuples(
                st.just(f),
                st.lists(
                    st.tuples(st.integers(0, len(f.payload) - 1), st.integers(0, 255)), max_size=3
                ),
            )
        )

        @FAST
        @given(frames)
        def run_frames(case: tuple[Fixture, list[tuple[int, int]]]) -> None:
            fixture, changes = case
            frame = bytearray(fixture.payload)
            for at, byte in changes:
                frame[at] = byte
            _check(adapter, fixture.topic, bytes(frame), dict(fixture.options))

        run_frames()
        return

    @FAST
    @given(st.sampled_from(fixtures), st.data())
    def run(fixture: Fixture, data: st.DataObject) -> None:
        body = _json_of(fixture)
        for key in data.draw(st.lists(st.sampled_from(sorted(body)), max_size=3)):
            inner = body[key]
            if isinstance(inner, dict) and inner and data.draw(st.booleans()):
                inner = {**inner, data.draw(st.sampled_from(sorted(inner))): data.draw(JSONISH)}
                body = {**body, key: inner}
            else:
                body = {**body, key: data.draw(JSONISH)}
        _check(adapter, fixture.topic, json.dumps(body).encode(), dict(fixture.options))

    run()
