"""Adapter devices end to end: real Mosquitto, the gateway process, vendor-format messages
published and pushed the way the devices send them (payloads from the adapters' fixtures,
each with its public source there)."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.community import config
from tests.support.wait import wait_for
from tests.support.webhook_receiver import Receiver
from tests.unit.devices.adapters import http_payloads as hp
from tests.unit.devices.adapters.fixtures import LORAWAN, SHELLY, TASMOTA, Z2M

HIK_TOKEN = "9f0c3b8e6d2a41f7b5c8e0d1a2b3c4d5"
ANPR_TOKEN = "a1" * 16
VZ_TOKEN = "b2" * 16

REGISTRY = f"""
[[communities]]
id = "c1"

[[devices]]
id = "b3-door-contact"
community = "c1"
class = "access"
adapter = "zigbee2mqtt"
source = "0x00158e5202e6be17"

[[devices]]
id = "lot-space-7"
community = "c1"
class = "parking"
adapter = "chirpstack"
source = "0101010101010101"

[[devices]]
id = "b3-plug-meter"
community = "c1"
class = "meter"
adapter = "tasmota"
source = "pow1"

[[devices]]
id = "b3-main-meter"
community = "c1"
class = "meter"
adapter = "shelly"
source = "shellypro3em-b0b21c10a1b8"

[[devices]]
id = "b3-gate-controller"
community = "c1"
class = "access"
adapter = "hikvision"
source = "BC-5E-33-62-2A-5C"
ingest_token = "{HIK_TOKEN}"

[[devices]]
id = "lot-entry-anpr"
community = "c1"
class = "parking"
adapter = "hikvision-anpr"
ingest_token = "{ANPR_TOKEN}"

[[devices]]
id = "lot-exit-vz"
community = "c1"
class = "parking"
adapter = "vzenith"
source = "{hp.VZ_SERIAL}"
ingest_token = "{VZ_TOKEN}"
"""

GATEWAY = """
[[adapters]]
kind = "zigbee2mqtt"
community = "c1"
base_topic = "zigbee2mqtt"

[[adapters]]
kind = "chirpstack"
community = "c1"

[[adapters]]
kind = "tasmota"
community = "c1"

[[adapters]]
kind = "shelly"
community = "c1"

[[adapters]]
kind = "hikvision-anpr"
community = "c1"
max_body_bytes = 65536

[rules.door_held_open]
open_s = 1
"""


def journal_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(
            conn.execute(
                "SELECT d.device, j.body FROM journal j JOIN devices d ON d.id = j.device_id"
                " ORDER BY j.id"
            )
        )


def hik_now(document: dict[str, Any]) -> bytes:
    """A controller's push stamped now (the journal keeps a device's time when it is sane)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return json.dumps({**document, "dateTime": now}).encode()


@pytest.fixture
def receiver():
    r = Receiver(strict_time=True)
    yield r
    r.close()


def test_zigbee2mqtt_contact_held_open_and_an_unbound_source_discovered(
    mosquitto, gateway_factory, publisher
):
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY, extra=GATEWAY)
    gw.start()
    contact = Z2M["contact"]  # "contact": false, the door is open
    publisher.publish(contact.topic, contact.payload)
    publisher.publish("zigbee2mqtt/Bike Shed", json.dumps({"contact": True, "battery": 91}))
    publisher.publish("zigbee2mqtt/bridge/logging", json.dumps({"level": "info", "message": "x"}))

    def held() -> list[dict[str, Any]]:
        alerts = gw.get("/api/v1/alerts").json()["alerts"]
        return [a for a in alerts if a["rule"] == "door_held_open"]

    (alert,) = wait_for(held, what="door_held_open")  # type: ignore[misc]
    assert alert["device"] == "b3-door-contact"
    door = gw.get("/api/v1/devices/b3-door-contact").json()
    assert door["latest"]["door_open"]["value"] is True
    assert door["latest"]["battery_v"] == {
        "value": 3.015,
        "ts": door["latest"]["battery_v"]["ts"],
        "unit": "V",
    }

    devices = gw.get("/api/v1/devices").json()["devices"]
    (shed,) = [d for d in devices if d["id"].startswith("zigbee2mqtt-bike-shed")]
    assert shed["registered"] is False and shed["class"] == "access"
    assert (shed["adapter"], shed["source"]) == ("zigbee2mqtt", "Bike Shed")
    assert shed["latest"]["door_open"]["value"] is False
    metrics = gw.get("/metrics").text
    assert 'courtyard_adapter_ignored_total{adapter="zigbee2mqtt",reason="bridge_log"} 1' in metrics


def test_lorawan_tasmota_and_shelly_devices_report_in_the_contracts_units(
    mosquitto, gateway_factory, publisher, influxd_v1
):
    influxd_v1.create_database("adapters")
    gw = gateway_factory(
        mqtt_url=mosquitto.url,
        registry=REGISTRY,
        extra=GATEWAY,
        influx={"url": influxd_v1.url, "api": "v1", "database": "adapters"},
    )
    gw.start()
    nps405 = LORAWAN["chirpstack_nps405"]
    # the network server's time of the uplink, now (the journal keeps a sane device time)
    uplink = {**json.loads(nps405.payload), "time": datetime.now(UTC).isoformat()}
    for _ in range(2):  # a repeated uplink: the same frame counter and time
        publisher.publish(nps405.topic, json.dumps(uplink))
    for fixture in (TASMOTA["sensor"], SHELLY["emdata"], SHELLY["em"]):
        publisher.publish(fixture.topic, fixture.payload)

    def latest(device: str) -> dict[str, Any]:
        return dict(gw.get(f"/api/v1/devices/{device}").json()["latest"])

    wait_for(lambda: "power_l3_w" in latest("b3-main-meter"), what="the Shelly's em status")
    assert latest("lot-space-7")["occupied"]["value"] is True
    plug = latest("b3-plug-meter")
    assert (plug["energy_kwh"]["value"], plug["energy_kwh"]["unit"]) == (6.294, "kWh")
    assert (plug["power_w"]["value"], plug["voltage_v"]["value"]) == (2635, 227)
    main = latest("b3-main-meter")
    assert (main["energy_kwh"]["value"], main["energy_kwh"]["unit"]) == (814.34585, "kWh")
    assert main["power_l3_w"]["value"] == 228.6

    # the meters' energy reaches InfluxDB in kWh, under the devices' ids
    def energy(device: str) -> list[Any]:
        q = f'SELECT last("energy_kwh") FROM "meter" WHERE "device" = \'{device}\''
        series = influxd_v1.query(q, "adapters")[0].get("series")
        return [row[1] for row in series[0]["values"]] if series else []

    wait_for(lambda: energy("b3-main-meter"), what="the Pro 3EM's energy in InfluxDB")
    assert energy("b3-main-meter") == [pytest.approx(814.34585)]
    assert energy("b3-plug-meter") == [pytest.approx(6.294)]
    # the repeated uplink (same frame counter and server time) is stored once
    rows = [body for device, body in journal_rows(gw.db) if device == "lot-space-7"]
    assert len(rows) == 1


def test_http_pushes_reach_the_journal_rules_and_events(mosquitto, gateway_factory, receiver):
    gw = gateway_factory(
        mqtt_url=mosquitto.url, registry=REGISTRY, extra=GATEWAY + config(receiver.url)
    )
    gw.start()
    url = f"{gw.api}/api/v1/ingest"

    # a Hikvision controller's forced door, the token in the URL as the controller sends it
    forced = hik_now(hp.HIK_DOOR_FORCED)
    r = httpx.post(
        f"{url}/hikvision?token={HIK_TOKEN}",
        content=forced,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert ("b3-gate-controller", '{"event":"door_forced","door":1}') in journal_rows(gw.db)
    raised = wait_for(lambda: receiver.of_type("alert.raised"), what="alert.raised")
    assert [(e["data"]["device"], e["data"]["rule"]) for e in raised] == [
        ("b3-gate-controller", "door_forced")
    ]
    assert receiver.bad_signatures == 0
    # the same push again (its serialNo and time): stored once
    r = httpx.post(
        f"{url}/hikvision",
        content=forced,
        headers={"Authorization": f"Bearer {HIK_TOKEN}", "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    assert sum("door_forced" in body for _, body in journal_rows(gw.db)) == 1

    # an ANPR camera (Basic auth, its XML in multipart with two pictures)
    basic = base64.b64encode(f"admin:{ANPR_TOKEN}".encode()).decode()
    r = httpx.post(
        f"{url}/hikvision-anpr",
        content=hp.anpr_multipart(hp.ANPR_DETECTED),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "multipart/form-data; boundary=boundary",
        },
    )
    assert r.status_code == 200, r.text
    # a Vzenith camera, answered in its own format (received, barrier left closed)
    r = httpx.post(f"{url}/vzenith?token={VZ_TOKEN}", json=hp.VZ_PLATE)
    assert r.status_code == 200
    assert r.json() == {"Response_AlarmInfoPlate": {"info": "no", "plateid": 1843}}

    events = gw.get("/api/v1/events").json()["events"]
    plates = {e["device"]: e for e in events if e["event"] == "vehicle_entered"}
    assert plates["lot-entry-anpr"]["attrs"]["plate"] == "KH35192"
    assert plates["lot-exit-vz"]["attrs"]["plate"] == "粤FQK883"
    assert plates["lot-exit-vz"]["attrs"]["plate_color"] == "blue"
    anpr = plates["lot-entry-anpr"]["attrs"]
    assert anpr["picture"].startswith("/api/v1/pictures/c1.") and len(anpr["pictures"]) == 2
    picture = gw.get(anpr["picture"])
    assert picture.status_code == 200 and picture.content == hp.JPEG
    assert httpx.get(gw.api + anpr["picture"]).status_code == 401
    name = anpr["picture"].rsplit("/", 1)[1]
    path = gw.dir / "pictures" / "c1" / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"JFIF" not in Path(gw.db).read_bytes()  # never inside the journal row
    # and on the console's parking page, as a guard sees them
    signed_in = httpx.post(f"{gw.api}/console/login", data={"key": gw.key})
    jar = {"courtyard_session": signed_in.cookies["courtyard_session"]}
    page = httpx.get(f"{gw.api}/console/parking", cookies=jar).text
    assert "KH35192" in page and "粤FQK883" in page and anpr["picture"] in page


def test_refused_pushes_journal_nothing(mosquitto, gateway_factory):
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY, extra=GATEWAY)
    gw.start()
    url = f"{gw.api}/api/v1/ingest"
    json_type = {"Content-Type": "application/json"}
    forced = hik_now(hp.HIK_DOOR_FORCED)
    wrong = "0" * 32
    assert (
        httpx.post(f"{url}/hikvision?token={wrong}", content=forced, headers=json_type).status_code
        == 401
    )
    assert httpx.post(f"{url}/hikvision", content=forced, headers=json_type).status_code == 401
    # a token of another adapter's device
    assert (
        httpx.post(
            f"{url}/hikvision?token={VZ_TOKEN}", content=forced, headers=json_type
        ).status_code
        == 401
    )
    other_mac = json.dumps({**json.loads(forced), "macAddress": "bc:5e:33:00:00:01"})
    r = httpx.post(f"{url}/hikvision?token={HIK_TOKEN}", content=other_mac, headers=json_type)
    assert r.status_code == 403
    big = hp.anpr_multipart(hp.ANPR_DETECTED + b" " * 70_000)
    r = httpx.post(
        f"{url}/hikvision-anpr?token={ANPR_TOKEN}",
        content=big,
        headers={"Content-Type": "multipart/form-data; boundary=boundary"},
    )
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit is checked while reading
        for _ in range(40):
            yield b" " * 4096

    r = httpx.post(
        f"{url}/hikvision-anpr?token={ANPR_TOKEN}",
        content=chunks(),
        headers={"Content-Type": "application/xml"},
    )
    assert r.status_code == 413
    r = httpx.post(
        f"{url}/hikvision?token={HIK_TOKEN}", content=b'{"eventType": 7', headers=json_type
    )
    assert r.status_code == 400 and r.json()["rejected"] == "not_json"
    assert journal_rows(gw.db) == []
    metrics = gw.get("/metrics").text
    assert 'courtyard_dead_letters_total{reason="not_json",adapter="hikvision"} 1' in metrics
    assert 'courtyard_ingest_http_total{adapter="hikvision",status="401"} 3' in metrics
    assert 'courtyard_ingest_http_total{adapter="hikvision",status="403"} 1' in metrics
    assert 'courtyard_ingest_http_total{adapter="hikvision-anpr",status="413"} 2' in metrics
    for secret in (HIK_TOKEN, ANPR_TOKEN, wrong):
        assert secret not in gw.logs()
