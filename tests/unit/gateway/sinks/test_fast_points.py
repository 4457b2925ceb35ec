"""Points from raw rows (the fast path) equal the points the careful encoder builds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.model import Decoded
from gateway.sinks.lineproto import RawEncoder, encode
from gateway.store.journal import Accepted, Store
from gateway.store.reader import JournalReader


def parse(line: str) -> tuple[str, dict[str, object], int]:
    series, fields, ts = line.split(" ")
    out: dict[str, object] = {}
    for part in fields.split(","):
        key, _, text = part.partition("=")
        out[key] = text == "true" if text in ("true", "false") else float(text)
    return series, out, int(ts)


values = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53).map(float),
)
bodies = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), values, min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(bodies, min_size=1, max_size=20), building=st.sampled_from(["", "b3"]))
def test_fast_points_equal_careful_points(tmp_path_factory, rows, building):
    path = str(tmp_path_factory.mktemp("lp") / "j.db")
    store = Store(path)
    store.open()
    store.register([("m-1", "c1", "meter", building)])
    dev = store.devices["m-1"]
    store.write(
        [
            Accepted(dev, Decoded("meter", "m-1", "telemetry", 1_000 + i, seq=i, fields=body), 0)
            for i, body in enumerate(rows)
        ],
        [],
    )
    reader = JournalReader(path)
    careful: list[int] = []

    def slow(ids: list[int]):
        careful.extend(ids)
        return reader.read_telemetry_ids(ids)

    fast = RawEncoder(reader.device).encode(reader.read_raw(0, 1000), slow)
    assert careful == []  # every row took the fast path
    slow = encode(reader.read_telemetry(0, 1000))
    assert [r.id for r in fast.rows] == [r.id for r in slow.rows]
    for a, b in zip(fast.lines, slow.lines, strict=True):
        sa, fa, ta = parse(a)
        sb, fb, tb = parse(b)
        assert (sa, ta) == (sb, tb)
        assert fa == fb  # %!.17g round-trips every double exactly
    reader.close()
    store.close()


def test_rows_the_fast_path_cannot_take_are_encoded_carefully(tmp_path):
    path = str(tmp_path / "j.db")
    store = Store(path)
    store.open()
    store.register([("m-1", "c1", "meter", "Block 3, east")])  # needs escaping
    dev = store.devices["m-1"]
    store.write(
        [Accepted(dev, Decoded("meter", "m-1", "telemetry", 5, seq=1, fields={"power_w": 2.5}), 0)],
        [],
    )
    reader = JournalReader(path)
    encoded = RawEncoder(reader.device).encode(reader.read_raw(0, 10), reader.read_telemetry_ids)
    assert encoded.lines == [
        "meter,building=Block\\ 3\\,\\ east,community=c1,device=m-1 power_w=2.5 5"
    ]
    reader.close()
    store.close()
