"""Line protocol encoding: exact output, escaping, what is skipped, and a round-trip property
checked with an independent parser that follows the server's scanning rules."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sinks.lineproto import BAD_BODY, BAD_NAME, NO_FIELDS, encode, payload
from gateway.store.reader import TelemetryRow

TS = 1_795_305_594_000


def row(
    body: Any,
    *,
    device: str = "m-1",
    community: str = "c1",
    building: str = "b3",
    device_class: str = "meter",
    ts_ms: int = TS,
    row_id: int = 1,
) -> TelemetryRow:
    text = body if isinstance(body, str) else json.dumps(body)
    return TelemetryRow(row_id, device, community, building, device_class, ts_ms, text)


def one_line(r: TelemetryRow) -> str:
    enc = encode([r])
    assert len(enc.lines) == 1, enc.skipped
    return enc.lines[0]


# -- exact output ------------------------------------------------------------------------------


def test_a_point_has_sorted_tags_float_fields_and_a_millisecond_timestamp() -> None:
    line = one_line(row({"energy_kwh": 1234.5, "power_w": 3, "on": True, "fault": False}))
    assert line == (
        "meter,building=b3,community=c1,device=m-1 "
        f"energy_kwh=1234.5,power_w=3.0,on=true,fault=false {TS}"
    )


def test_an_empty_building_is_left_out() -> None:
    assert one_line(row({"v": 1.0}, building="")) == f"meter,community=c1,device=m-1 v=1.0 {TS}"


def test_integers_are_always_floats_even_huge_or_negative() -> None:
    line = one_line(row({"a": 0, "b": -7, "c": 10**20, "d": 2**53 + 1}))
    assert " a=0.0,b=-7.0,c=1e+20,d=9007199254740992.0 " in line


def test_non_finite_and_non_numeric_fields_are_dropped_and_counted() -> None:
    enc = encode([row({"ok": 1.5, "s": "text", "n": None, "l": [1], "d": {"x": 1}})])
    assert enc.lines[0].split(" ")[1] == "ok=1.5"
    assert enc.dropped_fields == 4
    # the journal's JSON has no NaN or infinity: such a body is malformed as a whole
    for text in ('{"ok": 1.5, "nan": NaN}', '{"ok": 1.5, "big": 1e400}'):
        r = row(text)
        assert encode([r]).skipped == [(r, BAD_BODY)]


def test_non_finite_floats_are_dropped() -> None:
    from gateway.sinks.lineproto import format_value

    assert [format_value(v) for v in (math.nan, math.inf, -math.inf, 10**400)] == [None] * 4
    assert format_value(1.5) == "1.5"


def test_payload_joins_lines_with_newlines() -> None:
    enc = encode([row({"v": 1}, row_id=1, ts_ms=1), row({"v": 2}, row_id=2, ts_ms=2)])
    assert payload(enc.lines) == (
        b"meter,building=b3,community=c1,device=m-1 v=1.0 1\n"
        b"meter,building=b3,community=c1,device=m-1 v=2.0 2"
    )
    assert [r.id for r in enc.rows] == [1, 2]


# -- escaping ----------------------------------------------------------------------------------


def test_measurement_escapes_comma_and_space_but_not_equals() -> None:
    line = one_line(row({"v": 1}, device_class="my meter,x=y"))
    assert line.startswith("my\\ meter\\,x=y,building=")


def test_tag_values_and_field_keys_escape_comma_equals_space() -> None:
    line = one_line(row({"p w,x=1": 2.0}, device="a=b c,d", building="", community="c 1"))
    assert line == f"meter,community=c\\ 1,device=a\\=b\\ c\\,d p\\ w\\,x\\=1=2.0 {TS}"


def test_unicode_and_quotes_are_written_as_they_are() -> None:
    line = one_line(row({"温度": 21.5}, device='门禁"1"', community="小区"))
    assert line == f'meter,building=b3,community=小区,device=门禁"1" 温度=21.5 {TS}'


def test_a_backslash_is_literal_unless_it_would_eat_an_escape() -> None:
    assert "device=a\\b " in one_line(row({"v": 1}, device="a\\b"))
    for bad in ("a\\", "a\\,b", "a\\ b", "a\\=b"):
        r = row({"v": 1}, device=bad)
        assert encode([r]).skipped == [(r, BAD_NAME)], bad


# -- what cannot be written ----------------------------------------------------------------------


def test_rows_whose_names_cannot_be_written_are_skipped_with_a_reason() -> None:
    bad = [
        row({"v": 1}, device="a\nb"),
        row({"v": 1}, community="tab\there"),
        row({"v": 1}, device_class="#comment"),
        row({"v": 1}, device_class=""),
        row({"v": 1}, building="nul\x00"),
    ]
    good = row({"v": 1}, device="fine")
    enc = encode([*bad, good])
    assert [reason for _, reason in enc.skipped] == [BAD_NAME] * len(bad)
    assert enc.rows == [good]


def test_bodies_that_are_not_objects_or_have_no_fields_are_skipped() -> None:
    rows = [row("not json"), row([1, 2]), row({}), row({"s": "only text"})]
    enc = encode(rows)
    assert [reason for _, reason in enc.skipped] == [BAD_BODY, BAD_BODY, NO_FIELDS, NO_FIELDS]
    assert enc.lines == []


def test_a_field_key_that_cannot_be_written_drops_only_that_field() -> None:
    enc = encode([row({"ok": 1, "bad\n": 2, "": 3})])
    assert enc.lines[0].split(" ")[1] == "ok=1.0"
    assert enc.dropped_fields == 2


# -- round trip through an independent parser ----------------------------------------------------


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split where ``sep`` is not escaped; a backslash always consumes the next character."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str, specials: str) -> str:
    for ch in specials:
        text = text.replace("\\" + ch, ch)
    return text


def parse(line: str) -> tuple[str, dict[str, str], dict[str, float | bool], int]:
    key, fields, ts = split_unescaped(line, " ")
    measurement, *tags = split_unescaped(key, ",")
    tag_map = {}
    for tag in tags:
        k, v = split_unescaped(tag, "=")
        tag_map[unescape(k, ",= ")] = unescape(v, ",= ")
    field_map: dict[str, float | bool] = {}
    for item in split_unescaped(fields, ","):
        k, v = split_unescaped(item, "=")
        field_map[unescape(k, ",= ")] = v == "true" if v in ("true", "false") else float(v)
    return unescape(measurement, ", "), tag_map, field_map, int(ts)


NAMES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=' ,=\\"#\n\tab', max_size=8),
    st.sampled_from(["meter", "m-1", "c1", "b3", ""]),
)
VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
)


def writable(name: str, specials: str) -> bool:
    if any(ord(c) < 32 or c == "\x7f" for c in name) or name.endswith("\\"):
        return False
    return not any("\\" + c in name for c in specials)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    device_class=NAMES,
    community=NAMES,
    building=NAMES,
    device=NAMES,
    fields=st.dictionaries(NAMES, VALUES, max_size=5),
    ts_ms=st.integers(min_value=-(2**50), max_value=2**50),
)
def test_every_line_parses_back_to_what_was_encoded(
    device_class: str,
    community: str,
    building: str,
    device: str,
    fields: dict[str, float | bool],
    ts_ms: int,
) -> None:
    r = row(
        fields,
        device=device,
        community=community,
        building=building,
        device_class=device_class,
        ts_ms=ts_ms,
    )
    enc = encode([r])
    tags = {"building": building, "community": community, "device": device}
    names_ok = (
        bool(device_class)
        and not device_class.startswith("#")
        and writable(device_class, ", ")
        and all(writable(v, ",= ") for v in tags.values() if v)
    )
    expected_fields = {
        k: (v if isinstance(v, bool) else float(v))
        for k, v in fields.items()
        if k and writable(k, ",= ")
    }
    if not names_ok:
        assert enc.skipped == [(r, BAD_NAME)]
        return
    if not expected_fields:
        assert enc.skipped == [(r, NO_FIELDS)]
        return
    (line,) = enc.lines
    assert "\n" not in line
    measurement, got_tags, got_fields, got_ts = parse(line)
    assert measurement == device_class
    assert got_tags == {k: v for k, v in tags.items() if v}
    assert list(got_tags) == sorted(got_tags)
    assert got_ts == ts_ms
    assert got_fields == expected_fields
    assert all(math.isfinite(v) for v in got_fields.values())
    assert enc.dropped_fields == len(fields) - len(expected_fields)
