"""A planned stop is not an outage: the offline status the bridge publishes for its own bus
when the gateway stops cleanly ("reason": "gateway_stopped") marks the bus offline and raises
nothing, at the stop or when the next start reads it again (retained). The same words from any
other device, or a bus offline without them, still raise device_offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.model import GATEWAY_STOPPED
from tests.support.rules_harness import Harness

SERIAL = [
    {
        "id": "bus-b3",
        "community": "c1",
        "port": "/dev/ttyUSB0",
        "protocol": "modbus-rtu",
        "devices": [{"id": "m-1", "address": "1", "model": "sdm630"}],
    }
]
DEVICES = [{"id": "w-1", "community": "c1", "class": "meter", "expect_every_s": 3600}]


@pytest.fixture
def h(tmp_path: Path):  # type: ignore[no-untyped-def]
    h = Harness(tmp_path / "c.db", DEVICES, serial=SERIAL)
    yield h
    h.close()


def offline_alerts(h: Harness) -> list[str]:
    return [
        n["data"]["device"]
        for n in h.notices("alert.raised")
        if n["data"]["rule"] == "device_offline"
    ]


def test_the_bus_stopped_by_the_gateway_raises_nothing_now_or_at_the_next_start(
    h: Harness,
) -> None:
    assert h.engine.info["bus-b3"].bridged and h.engine.info["m-1"].bridged
    assert not h.engine.info["w-1"].bridged
    h.send("bus-b3", "status", state="online")
    h.send("m-1", "telemetry", power_w=12.0)
    h.send("bus-b3", "status", state="offline", reason=GATEWAY_STOPPED)
    assert h.store.devices["bus-b3"].online is False  # offline, said so, not alerted
    h.advance(600)
    assert offline_alerts(h) == []
    h.close()
    h.open()  # the next start reads the retained status again, then the bus comes back
    h.send("bus-b3", "status", state="offline", reason=GATEWAY_STOPPED)
    h.advance(5)
    h.send("bus-b3", "status", state="online")
    h.advance(600)
    assert offline_alerts(h) == []
    assert h.active() == []


def test_an_outage_of_the_bus_still_raises(h: Harness) -> None:
    h.send("bus-b3", "status", state="online")
    h.send("bus-b3", "status", state="offline")  # the port is gone: nothing planned
    assert offline_alerts(h) == ["bus-b3"]


def test_no_other_device_can_call_its_offline_planned(h: Harness) -> None:
    h.send("w-1", "telemetry", flow_m3h=0.0)
    h.send("w-1", "status", state="offline", reason=GATEWAY_STOPPED)
    assert offline_alerts(h) == ["w-1"]


def test_after_a_restart_with_the_embedded_broker_a_will_waits_for_the_device(
    h: Harness,
) -> None:
    """The embedded broker's own stop fired the devices' wills: at the next start each waits
    ``reconnect_wait_s`` (120 s) for its device; back in time, no alert; not back, alerted."""
    devices = [
        {"id": "gate-1", "community": "c1", "class": "access"},
        {"id": "gate-2", "community": "c1", "class": "access"},
    ]
    r = Harness(h.path.with_name("r.db"), devices, clock=h.clock)
    try:
        r.engine.doubt_offline_until(h.clock.now_ms() + 30_000)
        r.send("gate-1", "status", state="offline")  # the wills, queued at the broker's stop
        r.send("gate-2", "status", state="offline")
        r.advance(5)
        r.send("gate-1", "status", state="offline")  # and their retained copies
        r.advance(5)
        r.send("gate-1", "status", state="online")  # gate-1 reconnects
        r.advance(100)
        assert offline_alerts(r) == []
        assert r.store.devices["gate-2"].online is False
        r.close()  # a restart during the wait keeps it (a stored timer); this start doubts nothing
        r.open()
        r.advance(20)
        assert offline_alerts(r) == ["gate-2"]
        r.advance(600)
        assert offline_alerts(r) == ["gate-2"]
        # a will that nothing doubts is an outage at once
        r.send("gate-1", "status", state="offline")
        assert offline_alerts(r) == ["gate-2", "gate-1"]
    finally:
        r.close()
