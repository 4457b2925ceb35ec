import pytest

from devices.model import Rejected
from devices.topics import parse, subscription
from gateway.store.queries import QueryError, parse_duration, parse_time


def test_parse_topic():
    t = parse("community/c1/meter/m-b3-0101/telemetry", "community")
    assert t == ("c1", "meter", "m-b3-0101", "telemetry")
    assert subscription("community") == "community/#"


@pytest.mark.parametrize(
    "topic",
    [
        "community/c1/meter/telemetry",
        "community/c1/meter/m1/telemetry/x",
        "other/c1/meter/m1/telemetry",
        "community/C1/meter/m1/telemetry",
        "community/c1/meter/-m1/telemetry",
        "community//meter/m1/telemetry",
        "community/c1/meter/" + "a" * 65 + "/telemetry",
    ],
)
def test_bad_topics(topic):
    with pytest.raises(Rejected) as err:
        parse(topic, "community")
    assert err.value.reason == "bad_topic"


def test_durations_and_times():
    assert parse_duration("10s") == 10_000
    assert parse_duration("5m") == 300_000
    assert parse_duration("1h") == 3_600_000
    assert parse_duration("250ms") == 250
    for bad in ("0s", "10", "1w", "-5m", ""):
        with pytest.raises(QueryError):
            parse_duration(bad)
    assert parse_time("1763700000000", "since") == 1763700000000
    assert parse_time("2025-11-21T04:40:00Z", "since") == 1763700000000
    assert parse_time("2025-11-21T12:40:00+08:00", "since") == 1763700000000
    with pytest.raises(QueryError, match="offset"):
        parse_time("2025-11-21T04:40:00", "since")
    with pytest.raises(QueryError):
        parse_time("yesterday", "since")
