"""Journal telemetry rows to InfluxDB line protocol, in bulk.

One row becomes one point: the measurement is the device class, the tags are ``building``
(left out when empty), ``community`` and ``device`` (sorted by key, as the server prefers),
the fields are the body's readings and the timestamp is ``ts_ms`` at millisecond precision,
so a replayed row overwrites its own point instead of adding one.

Numbers are always written as floats (``3`` becomes ``3.0``) so that a field's type never
changes between an integer and a float reading; booleans are ``true``/``false``. Built with
plain string operations: a client library point object costs more than the whole receive
path per reading.

Line protocol cannot carry some names at all (a newline or another control character, a
measurement starting with ``#``, a backslash that would swallow the escape of the next
character); such a row is returned in :attr:`Encoded.skipped` with a reason instead of being
sent. Fields that cannot be written (non-finite numbers, strings, nulls, unusable keys) are
left out of their point and counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import orjson

from gateway.store.reader import RawRow, TelemetryRow

# Skip reasons (stable codes, used in dead letters)
BAD_NAME = "bad_name"
BAD_BODY = "bad_body"
NO_FIELDS = "no_fields"

_MEASUREMENT_SPECIALS = (",", " ")
_KEY_SPECIALS = (",", "=", " ")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Encoded(NamedTuple):
    """The result of :func:`encode`.

    ``lines[i]`` is the point of ``rows[i]`` (no trailing newline); ``skipped`` holds the
    rows that produced no point, with a reason code; ``dropped_fields`` counts the readings
    left out of otherwise valid points.
    """

    lines: list[str]
    rows: list[Any]  # TelemetryRow or LineRow: each has .id and .device
    skipped: list[tuple[TelemetryRow, str]]
    dropped_fields: int


def payload(lines: Iterable[str]) -> bytes:
    """The request body for a run of encoded lines."""
    return "\n".join(lines).encode()


def _unsafe(name: str, specials: tuple[str, ...]) -> bool:
    """True when ``name`` cannot be written unambiguously, whatever the escaping."""
    if _CONTROL.search(name):  # newlines, tabs, NUL: no escape exists for them
        return True
    if "\\" in name:
        # The server skips a backslash and the character after it: a backslash at the end,
        # or before a character that needs escaping, would eat that escape.
        if name.endswith("\\"):
            return True
        if any("\\" + ch in name for ch in specials):
            return True
    return False


def escape_measurement(name: str) -> str | None:
    """The escaped measurement, or None when it cannot be written."""
    if not name or name.startswith("#") or _unsafe(name, _MEASUREMENT_SPECIALS):
        return None
    return name.replace(",", "\\,").replace(" ", "\\ ")


def escape_key(name: str) -> str | None:
    """A tag key, tag value or field key, escaped; None when it cannot be written."""
    if not name or _unsafe(name, _KEY_SPECIALS):
        return None
    return name.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def series_key(device_class: str, community: str, building: str, device: str) -> str | None:
    """``measurement,building=..,community=..,device=..``; empty tags are left out."""
    measurement = escape_measurement(device_class)
    if measurement is None:
        return None
    parts = [measurement]
    for key, value in (("building", building), ("community", community), ("device", device)):
        if not value:
            continue
        escaped = escape_key(value)
        if escaped is None:
            return None
        parts.append(f"{key}={escaped}")
    return ",".join(parts)


def format_value(value: Any) -> str | None:
    """A field value as line protocol: floats always, booleans as words; None if unwritable."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float:
        return repr(value) if math.isfinite(value) else None
    if type(value) is int:
        try:
            return repr(float(value))
        except OverflowError:
            return None
    return None


def encode(rows: Iterable[TelemetryRow]) -> Encoded:
    """Encode telemetry rows as line protocol, one point per row (see the module doc)."""
    lines: list[str] = []
    kept: list[TelemetryRow] = []
    skipped: list[tuple[TelemetryRow, str]] = []
    dropped = 0
    series_cache: dict[tuple[str, str, str, str], str | None] = {}
    key_cache: dict[str, str | None] = {}
    loads = orjson.loads
    for row in rows:
        ident = (row.device_class, row.community, row.building, row.device)
        try:
            series = series_cache[ident]
        except KeyError:
            series = series_cache[ident] = series_key(*ident)
        if series is None:
            skipped.append((row, BAD_NAME))
            continue
        try:
            body = loads(row.body)
        except orjson.JSONDecodeError:
            skipped.append((row, BAD_BODY))
            continue
        if not isinstance(body, dict):
            skipped.append((row, BAD_BODY))
            continue
        fields = []
        for name, value in body.items():
            try:
                key = key_cache[name]
            except KeyError:
                key = key_cache[name] = escape_key(name)
            kind = type(value)  # format_value, inlined: this loop is the hot path
            if kind is float and value - value == 0.0:  # finite: inf - inf and nan are nan
                text: str | None = repr(value)
            else:
                text = format_value(value)
            if key is None or text is None:
                dropped += 1
                continue
            fields.append(f"{key}={text}")
        if not fields:
            skipped.append((row, NO_FIELDS))
            continue
        lines.append(f"{series} {','.join(fields)} {row.ts_ms}")
        kept.append(row)
    return Encoded(lines, kept, skipped, dropped)


class RawEncoder:
    """Points from raw journal rows, the fast path: the series of each device is built once,
    and the stored body ``{"a":1.5,"b":true}`` becomes the field set ``a=1.5,b=true`` by plain
    string operations. That holds because the ingest writes telemetry bodies itself: field
    names are ``[a-z][a-z0-9_]*`` and values are numbers (in their exact shortest text; a
    number without ``i`` is a float in line protocol) or booleans. A row that does not look
    like that is encoded by :func:`encode`, the careful path."""

    def __init__(self, device: Callable[[int], tuple[str, str, str, str] | None]) -> None:
        self._lookup = device
        self._series: dict[int, tuple[str, str | None]] = {}

    def encode(
        self, rows: Sequence[RawRow], slow: Callable[[list[int]], list[TelemetryRow]]
    ) -> Encoded:
        lines: list[str] = []
        kept: list[Any] = []
        careful: list[int] = []
        cache = self._series
        for row in rows:
            entry = cache.get(row.device_id)
            if entry is None:
                info = self._lookup(row.device_id)
                if info is None:
                    careful.append(row.id)
                    continue
                device, community, building, device_class = info
                entry = cache[row.device_id] = (
                    device,
                    series_key(device_class, community, building, device),
                )
            body = row.body
            if entry[1] is None or not _plain_body(body):
                careful.append(row.id)
                continue
            fields = body[1:-1].replace('"', "").replace(":", "=")
            lines.append(f"{entry[1]} {fields} {row.ts_ms}")
            kept.append(_Kept(row.id, entry[0]))
        if not careful:
            return Encoded(lines, kept, [], 0)
        rest = encode(slow(careful))
        return Encoded(lines + rest.lines, kept + rest.rows, rest.skipped, rest.dropped_fields)


class _Kept(NamedTuple):
    id: int
    device: str


def _plain_body(body: str) -> bool:
    """A non-empty JSON object of the ingest's own making (no strings, spaces or escapes)."""
    return (
        len(body) > 2
        and body[0] == "{"
        and body[-1] == "}"
        and " " not in body
        and "\\" not in body
        and "=" not in body
    )
