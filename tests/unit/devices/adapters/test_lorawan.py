"""LoRaWAN: ChirpStack v4 and The Things Stack v3 uplinks, radio data, codecs, repeats."""

from __future__ import annotations

import base64
import json

import pytest

from devices.adapters import ADAPTERS
from devices.model import Rejected
from tests.unit.devices.adapters.fixtures import LORAWAN, QALCOSONIC_W1, _chirpstack_up, _tts_up
from tests.unit.devices.adapters.helpers import decoded, only

C = ADAPTERS["chirpstack"]
T = ADAPTERS["tts"]
UP = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
RADIO = {"rssi_dbm": -36, "snr_db": 10.5, "radio_frequency_hz": 867100000, "spreading_factor": 11}


def test_chirpstack_uplink_radio_metadata_and_a_left_out_frame_counter() -> None:
    out = decoded(LORAWAN["chirpstack_up"])
    assert out["source"] == "0101010101010101"
    assert out["class"] == ""  # no codec, no object: nothing says what it is
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": RADIO,
            "ts": 1658136855775,  # the server's "time", 2022-07-18T09:34:15.775023242Z
            "seq": 0,  # proto3 JSON leaves a zero fCnt out
        }
    ]


def test_best_gateway_gives_rssi_and_its_snr() -> None:
    rx = [{"rssi": -110, "snr": 12}, {"rssi": -80, "snr": -3.5}, {"gatewayId": "x"}]
    out = C.decode(UP, _chirpstack_up(rxInfo=rx), {})
    readings = out.messages[0].readings
    assert (readings["rssi_dbm"], readings["snr_db"]) == (-80, -3.5)


def test_chirpstack_nps405_codec_from_the_profile_name() -> None:
    out = decoded(LORAWAN["chirpstack_nps405"])
    assert out["class"] == "parking"
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": {**RADIO, "occupied": True},
            "ts": 1658136855775,
            "seq": 4021,
        }
    ]


@pytest.mark.parametrize(
    ("byte", "occupied"), [(0x95, True), (0x94, False), (0x01, True), (0xFE, False)]
)
def test_nps405_status_bit(byte: int, occupied: bool) -> None:
    body = _chirpstack_up(data=base64.b64encode(bytes([byte])).decode())
    out = C.decode(UP, body, {"codec": "nwave-nps405"})
    assert out.messages[0].readings["occupied"] is occupied


def test_nps405_heartbeat_battery_and_temperature() -> None:
    body = _chirpstack_up(fPort=2, data=base64.b64encode(bytes.fromhex("00D3D800590B")).decode())
    readings = C.decode(UP, body, {"codec": "nwave-nps405"}).messages[0].readings
    assert readings["battery_v"] == 3.344  # 2500 + 4 x 0xD3 mV
    assert readings["temperature_c"] == -10  # 0xD8 = -40; -40 / 2 + 10
    assert "occupied" not in readings


def test_nps405_other_port_is_radio_only_and_wrong_length_is_rejected() -> None:
    startup = _chirpstack_up(fPort=3, data=base64.b64encode(bytes.fromhex("0204090200")).decode())
    assert C.decode(UP, startup, {"codec": "nwave-nps405"}).messages[0].readings == RADIO
    bad = _chirpstack_up(data=base64.b64encode(b"\x95\x00").decode())
    with pytest.raises(Rejected) as err:
        C.decode(UP, bad, {"codec": "nwave-nps405"})
    assert err.value.reason == "bad_payload"


def test_network_server_object_wins_over_the_codec() -> None:
    out = decoded(LORAWAN["chirpstack_object"])
    assert out["class"] == "parking"
    assert only(LORAWAN["chirpstack_object"])["readings"] == {
        **RADIO,
        "occupied": False,
        "battery_v": 3.344,
        "temperature_c": -10,
    }


def test_chirpstack_status_battery_level() -> None:
    assert only(LORAWAN["chirpstack_status"]) == {
        "kind": "telemetry",
        "readings": {"battery_pct": 88.3},
        "ts": 1658136906927,
    }
    mains = json.dumps({"externalPowerSource": True, "batteryLevel": 0}).encode()
    topic = UP.replace("/event/up", "/event/status")
    assert C.decode(topic, mains, {}).ignored == "status"


@pytest.mark.parametrize("event", ["join", "ack", "txack", "log", "location", "integration"])
def test_chirpstack_other_events_are_ignored_under_their_name(event: str) -> None:
    out = C.decode(UP.replace("/event/up", f"/event/{event}"), b"{}", {})
    assert (out.ignored, out.source) == (event, "0101010101010101")
    assert decoded(LORAWAN["chirpstack_join"])["ignored"] == "join"


def test_tts_uplink_radio_metadata_with_frequency_as_text() -> None:
    out = decoded(LORAWAN["tts_up"])
    assert out["source"] == "dev1"
    assert out["messages"] == [
        {
            "kind": "telemetry",
            "readings": {
                "rssi_dbm": -35,
                "snr_db": 5,
                "radio_frequency_hz": 868500000.0,
                "spreading_factor": 7,
            },
            "seq": 0,
        }
    ]


def test_tts_qalcosonic_codec_from_version_ids() -> None:
    out = decoded(LORAWAN["tts_qalcosonic"])
    assert (out["source"], out["class"]) == ("meter-b3-12", "meter")
    message = out["messages"][0]
    # the codec's worked example: 5938 L logged + 116 L of hourly deltas = 6.054 m3
    assert message["readings"]["volume_m3"] == 6.054
    assert message["readings"]["leak"] is False
    assert message["readings"]["battery_low"] is False
    assert (message["ts"], message["seq"]) == (1788390602118, 311)


@pytest.mark.parametrize(
    ("status", "leak", "events"),
    [
        (0x20, True, []),  # leakage
        (0x60, False, ["reverse_flow"]),  # backflow
        (0xA0, True, []),  # burst
        (0x04, False, []),  # low battery only
    ],
)
def test_qalcosonic_status_bits(status: int, leak: bool, events: list[str]) -> None:
    frame = bytearray(QALCOSONIC_W1)
    frame[5] = status
    body = _tts_up(
        "m", uplink_message={"f_port": 100, "frm_payload": base64.b64encode(frame).decode()}
    )
    out = T.decode("v3/water@ttn/devices/m/up", body, {"codec": "axioma-qalcosonic-w1"})
    assert out.messages[0].readings["leak"] is leak
    assert out.messages[0].readings["battery_low"] is (status == 0x04)
    assert [m.event for m in out.messages[1:]] == events


def test_tts_decoded_payload_with_backflow_is_an_event_too() -> None:
    out = decoded(LORAWAN["tts_decoded"])
    assert out["messages"][0]["readings"]["volume_m3"] == 6.054
    assert out["messages"][1] == {
        "kind": "event",
        "event": "reverse_flow",
        "attrs": {},
        "ts": 1788397200000,
        "seq": 12,
    }


def test_a_redelivered_uplink_has_the_same_ts_and_seq() -> None:
    for fixture in (LORAWAN["chirpstack_nps405"], LORAWAN["tts_qalcosonic"]):
        first = ADAPTERS[fixture.adapter].decode(fixture.topic, fixture.payload, {})
        again = ADAPTERS[fixture.adapter].decode(fixture.topic, bytes(fixture.payload), {})
        keys = [(m.ts_ms, m.seq, m.kind) for m in first.messages]
        assert keys == [(m.ts_ms, m.seq, m.kind) for m in again.messages]
        assert all(ts is not None and seq is not None for ts, seq, _ in keys)


def test_a_counter_restarted_after_a_rejoin_is_a_new_key() -> None:
    before = C.decode(UP, _chirpstack_up(fCnt=1, time="2024-01-01T00:00:00Z"), {})
    after = C.decode(UP, _chirpstack_up(fCnt=1, time="2024-01-02T00:00:00Z"), {})
    assert before.messages[0].seq == after.messages[0].seq == 1
    assert before.messages[0].ts_ms != after.messages[0].ts_ms


def test_tts_other_topics_and_simulated_uplinks_are_ignored() -> None:
    assert decoded(LORAWAN["tts_join"])["ignored"] == "join"
    assert T.decode("v3/a@ttn/devices/d/down/queued", b"{}", {}).ignored == "downlink"
    assert T.decode("v3/a@ttn/devices/d/service/data", b"{}", {}).ignored == "service_data"
    assert (
        T.decode("v3/a@ttn/devices/d/up", _tts_up("d", simulated=True), {}).ignored == "simulated"
    )


@pytest.mark.parametrize(
    ("adapter", "topic", "payload", "options", "reason"),
    [
        ("chirpstack", "application/a/device/zz/event/up", b"{}", {}, "unknown_topic"),
        ("chirpstack", "application/a/device/0101010101010101/up", b"{}", {}, "unknown_topic"),
        ("chirpstack", UP, _chirpstack_up(data="!!"), {"codec": "nwave-nps405"}, "bad_payload"),
        ("chirpstack", UP, _chirpstack_up(fCnt=-1), {}, "bad_payload"),
        ("chirpstack", UP, _chirpstack_up(), {"codec": "acme-9000"}, "unknown_model"),
        ("tts", "v3/a@ttn/devices/d/up", b'{"end_device_ids":{}}', {}, "bad_payload"),
        ("tts", "v2/a/devices/d/up", b"{}", {}, "unknown_topic"),
    ],
)
def test_rejections(
    adapter: str, topic: str, payload: bytes, options: dict[str, str], reason: str
) -> None:
    with pytest.raises(Rejected) as err:
        ADAPTERS[adapter].decode(topic, payload, options)
    assert err.value.reason == reason


def test_subscriptions() -> None:
    assert C.subscriptions({}) == (
        "application/+/device/+/event/up",
        "application/+/device/+/event/status",
    )
    assert T.subscriptions({}) == ("v3/+/devices/+/up",)
