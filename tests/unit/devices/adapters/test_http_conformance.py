"""Rules across every HTTP adapter at once: names from the contract, events, methods and
reasons from its vocabulary (CONTRACT.md 7.3), helpers that refuse rather than raise."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.adapters import anpr, hikvision, lpr_2n, vzenith
from devices.adapters.http import HTTP_ADAPTERS, HTTP_REASONS
from devices.model import Rejected
from devices.profiles.access import METHODS

CONTRACT_HTTP_ADAPTERS = {"hikvision", "hikvision-anpr", "vzenith", "2n-lpr"}
ACCESS_EVENTS = {
    *("door_opened", "door_closed", "door_forced", "door_held_open", "access_granted"),
    *("access_denied", "tamper", "intercom_call", "door_unlocked", "door_locked", "duress"),
}
DENIED_REASONS = {
    *("unknown_credential", "no_permission", "expired", "blocklisted", "outside_schedule"),
    "other",
}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_names_are_the_contracts() -> None:
    assert set(HTTP_ADAPTERS) == CONTRACT_HTTP_ADAPTERS


def test_hikvision_codes_speak_the_vocabulary() -> None:
    for pair, code in hikvision.CODES.items():
        assert code.event in ACCESS_EVENTS, pair
        if "method" in code.attrs:
            assert code.attrs["method"] in (*METHODS, "fingerprint"), pair
        assert ("reason" in code.attrs) == (code.event == "access_denied"), pair
        if code.event == "access_denied":
            assert code.attrs["reason"] in DENIED_REASONS, pair
        if code.event == "access_granted":
            assert "method" in code.attrs, pair
    assert hikvision.OTHER.event not in ACCESS_EVENTS  # the catch-all cannot pass for a known one


def test_parking_adapters_name_only_the_two_vehicle_events() -> None:
    assert set(anpr.EVENTS.values()) == {"vehicle_entered", "vehicle_exited"}
    assert set(vzenith.EVENTS.values()) == {"vehicle_entered", "vehicle_exited"}
    assert set(lpr_2n.EVENTS.values()) == {"vehicle_entered", "vehicle_exited"}


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["MORE", "OK", "2024-08-26T12:40:01+01:00", "1", "4"]),
)
ENTRY = st.dictionaries(
    st.sampled_from(["major", "minor", "time", "serialNo", "cardNo", "doorNo", "name", "x"]),
    SCALARS,
    max_size=8,
)
SEARCH = st.one_of(
    st.fixed_dictionaries(
        {
            "AcsEvent": st.fixed_dictionaries(
                {"InfoList": st.one_of(st.lists(st.one_of(ENTRY, SCALARS), max_size=5), SCALARS)},
                optional={"responseStatusStrg": SCALARS, "totalMatches": SCALARS},
            )
        }
    ),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)


def _json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate: no controller sends them
        return b"{}"


@FAST
@given(SEARCH)
def test_search_answers_refused_never_raised(answer: Any) -> None:
    try:
        page = hikvision.parse_search(_json(answer), {})
    except Rejected as exc:
        assert exc.reason in HTTP_REASONS
        return
    assert all(m.kind == "event" and m.event for m in page.messages)
    orjson.dumps([m.as_json() for m in page.messages])


@FAST
@given(
    st.sampled_from(["application/xml", "application/json", "text/plain", ""]),
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda tag, value: f"<ResponseStatus><{tag}>{value}</{tag}></ResponseStatus>".encode(
                "utf-8", "surrogatepass"
            ),
            st.sampled_from(["statusCode", "statusString", "subStatusCode", "x"]),
            st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=10),
        ),
        st.dictionaries(st.sampled_from(["statusCode", "ResponseStatus"]), SCALARS).map(_json),
    ),
)
def test_response_status_refused_never_raised(content_type: str, body: bytes) -> None:
    try:
        status = hikvision.parse_response_status(content_type, body)
    except Rejected as exc:
        assert exc.reason in HTTP_REASONS
        return
    assert status.ok == (status.status_code == 1)
