"""Malformed input never stops the flow: each kind lands in the dead letters with its reason."""

from __future__ import annotations

import json
import sqlite3
import time

from tests.support.community import community_file, dev
from tests.support.wait import wait_for

REGISTRY = community_file(devices=[dev("m-1", cls="meter"), dev("gate-north")])

T = "community/c1/meter/m-1/telemetry"
E = "community/c1/access/gate-north/event"

# (topic, payload, expected reason)
MALFORMED: list[tuple[str, bytes, str]] = [
    (T, b"not json at all", "not_json"),
    (T, b"\xff\xfe\x00garbage", "not_utf8"),
    (T, b"[1, 2, 3]", "not_object"),
    (T, b'"a string"', "not_object"),
    (T, b'{"power_w": NaN}', "non_finite"),
    (T, b'{"power_w": Infinity}', "non_finite"),
    (T, b'{"power_w": 1e999}', "non_finite"),
    (T, b'{"power_w": "12"}', "bad_field_type"),
    (T, b'{"energy_kwh": true}', "bad_field_type"),
    (T, b'{"ts": "yesterday", "power_w": 1}', "bad_ts"),
    (T, b'{"ts": true, "power_w": 1}', "bad_ts"),
    (T, b'{"seq": -1, "power_w": 1}', "bad_seq"),
    (T, b'{"seq": 1.5, "power_w": 1}', "bad_seq"),
    (T, b'{"note": "hello"}', "no_readings"),
    (T, b'{"Power W": 1}', "bad_field_name"),
    # over [store] max_payload_bytes, within the packet size the gateway advertises
    (T, b"x" * 70_000, "too_large"),
    (T, b"", "empty"),
    (T, b"[" * 20 + b"]" * 20, "too_deep"),
    (
        T,
        json.dumps({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}).encode(),
        "too_deep",
    ),
    ("community/c1/boiler/m-1/telemetry", b'{"temp_c": 50}', "unknown_class"),
    ("community/c1/meter/m-1", b'{"power_w": 1}', "bad_topic"),
    ("community/c1/meter/m-1/telemetry/extra", b'{"power_w": 1}', "bad_topic"),
    ("community/C1!/meter/m-1/telemetry", b'{"power_w": 1}', "bad_topic"),
    ("community/c1/meter/m-1/gossip", b'{"power_w": 1}', "unexpected_message"),
    (E, b'{"ts": 1}', "missing_event"),
    (E, b'{"event": "door_exploded"}', "unknown_event"),
    (E, b'{"event": "door_held_open", "seconds": "long"}', "bad_attribute"),
    ("community/c1/access/gate-north/status", b'{"state": "sleepy"}', "bad_status"),
    ("community/c1/access/gate-north/ack", b'{"ok": true}', "bad_ack"),
    ("community/c1/access/m-1/telemetry", b'{"door_open": true}', "registry_mismatch"),
]


def test_every_malformed_kind_is_dead_lettered_and_the_flow_goes_on(
    mosquitto, gateway_factory, publisher
):
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY)
    gw.start()
    now = int(time.time() * 1000)
    for i, (topic, payload, _) in enumerate(MALFORMED):
        publisher.publish(topic, payload)
        # a good message after every bad one: the flow must go on
        publisher.publish(T, json.dumps({"ts": now + i, "seq": i, "power_w": float(i)}))
    # not malformed, and kept: an unknown device, and an implausible timestamp
    publisher.publish("community/c1/parking/p-new/telemetry", b'{"occupied": true}')
    publisher.publish(T, json.dumps({"ts": now + 3_600_000, "seq": 999, "power_w": 7.5}))

    db = sqlite3.connect(gw.db)
    wait_for(
        lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] >= len(MALFORMED),
        what="dead letters",
    )
    rows = db.execute("SELECT topic, reason, size, length(head) FROM dead_letters ORDER BY id")
    got = [(topic, reason) for topic, reason, _, _ in rows]
    expected = [(topic, reason) for topic, _, reason in MALFORMED]
    assert sorted(got) == sorted(expected)
    size, head = db.execute(
        "SELECT size, length(head) FROM dead_letters WHERE reason='too_large'"
    ).fetchone()
    assert size == 70_000 and head == 1024

    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM journal j JOIN devices d ON d.id=j.device_id"
                " WHERE d.device='m-1' AND j.kind=0"
            ).fetchone()[0]
            == len(MALFORMED) + 1
        ),
        what="every good message stored",
    )

    metrics = gw.get("/metrics").text
    for reason in {r for _, _, r in MALFORMED}:
        count = sum(1 for _, _, r in MALFORMED if r == reason)
        assert f'courtyard_dead_letters_total{{reason="{reason}"}} {count}' in metrics

    discovered = gw.get("/api/v1/devices/p-new").json()
    assert discovered["registered"] is False
    assert discovered["latest"]["occupied"]["value"] is True

    flag, ts, received = db.execute(
        "SELECT flag, ts_ms, received_ms FROM journal WHERE seq = 999"
    ).fetchone()
    assert flag == "future"
    assert ts == received and abs(ts - now) < 60_000
