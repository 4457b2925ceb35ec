"""The vendor firmware stubs against the gateway process and a real Mosquitto: each speaks
its own format (firmware_stubs/vendors), and the gateway turns them into Courtyard's devices,
readings, events and alerts."""

from __future__ import annotations

from typing import Any

import pytest

from firmware_stubs.vendors.http_push import AnprCamera, HikvisionController, VzenithCamera
from firmware_stubs.vendors.lorawan import ChirpStackApplication, TheThingsStackApplication
from firmware_stubs.vendors.shelly import ShellyPro3EM
from firmware_stubs.vendors.tasmota import TasmotaPlug
from firmware_stubs.vendors.zigbee2mqtt import Zigbee2MqttBridge
from tests.support.community import config
from tests.support.wait import wait_for
from tests.support.webhook_receiver import Receiver

TOKENS = {"hikvision": "c3" * 16, "hikvision-anpr": "d4" * 16, "vzenith": "e5" * 16}


def binding(device: str, cls: str, adapter: str, source: str = "", token: str = "") -> str:
    out = (
        f'[[devices]]\nid = "{device}"\ncommunity = "c1"\nclass = "{cls}"\nadapter = "{adapter}"\n'
    )
    out += f'source = "{source}"\n' if source else ""
    return out + (f'ingest_token = "{token}"\n' if token else "")


REGISTRY = "\n".join(
    [
        '[[communities]]\nid = "c1"\n',
        binding("b3-door-contact", "access", "zigbee2mqtt", "0x00158e5202e6be17"),
        binding("laundry-plug", "meter", "tasmota", "pow1"),
        binding("b3-main-meter", "meter", "shelly", "shellypro3em-b0b21c10a1b8"),
        binding("lot-space-7", "parking", "chirpstack", "0101010101010101"),
        binding("b3-gate", "access", "hikvision", "bc:5e:33:62:2a:5c", TOKENS["hikvision"]),
        binding("lot-entry", "parking", "hikvision-anpr", token=TOKENS["hikvision-anpr"]),
        binding("lot-exit", "parking", "vzenith", "e2a5d4f1-77c0ab12", TOKENS["vzenith"]),
    ]
)

GATEWAY = """
[[adapters]]
kind = "zigbee2mqtt"
community = "c1"

[[adapters]]
kind = "tasmota"
community = "c1"

[[adapters]]
kind = "shelly"
community = "c1"

[[adapters]]
kind = "chirpstack"
community = "c1"

[[adapters]]
kind = "tts"
community = "c1"

[rules.door_held_open]
open_s = 1
"""


@pytest.fixture
def receiver():
    r = Receiver(strict_time=True)
    yield r
    r.close()


def test_vendor_stubs_become_courtyard_devices(mosquitto, gateway_factory, receiver):
    gw = gateway_factory(
        mqtt_url=mosquitto.url, registry=REGISTRY, extra=GATEWAY + config(receiver.url)
    )
    gw.start()
    port = mosquitto.port
    mqtt_stubs = [
        bridge := Zigbee2MqttBridge(port),
        plug := TasmotaPlug(port),
        em := ShellyPro3EM(port),
        chirpstack := ChirpStackApplication(port),
        tts := TheThingsStackApplication(port),
    ]
    for stub in mqtt_stubs:
        stub.start()
    try:
        assert all(stub.wait_connected(10) for stub in mqtt_stubs)
        ingest = f"{gw.api}/api/v1/ingest"
        controller = HikvisionController(f"{ingest}/hikvision?token={TOKENS['hikvision']}")
        anpr = AnprCamera(f"{ingest}/hikvision-anpr?token={TOKENS['hikvision-anpr']}")
        vzenith = VzenithCamera(f"{ingest}/vzenith?token={TOKENS['vzenith']}")

        bridge.set_door_open(True)
        bridge.log("interview done")
        plug.sensor()
        em.report()
        chirpstack.uplink(occupied=True, repeat=2)
        tts.uplink(litres_used=3)
        assert controller.card() == 200
        assert controller.force_door() == 200
        assert anpr.read("KH35192") == 200
        assert vzenith.read("粤FQK883") == 200
        assert vzenith.replies[-1]["Response_AlarmInfoPlate"]["info"] == "no"

        def rules() -> set[tuple[str, str]]:
            return {
                (e["data"]["device"], e["data"]["rule"]) for e in receiver.of_type("alert.raised")
            }

        wanted = {("b3-door-contact", "door_held_open"), ("b3-gate", "door_forced")}
        wait_for(lambda: wanted <= rules(), what=f"alerts {wanted}")
        assert receiver.bad_signatures == 0

        def latest(device: str) -> dict[str, Any]:
            return dict(gw.get(f"/api/v1/devices/{device}").json()["latest"])

        wait_for(lambda: "energy_kwh" in latest("b3-main-meter"), what="the Pro 3EM's energy")
        assert latest("lot-space-7")["occupied"]["value"] is True
        assert latest("laundry-plug")["energy_kwh"]["unit"] == "kWh"
        assert latest("laundry-plug")["energy_kwh"]["value"] == pytest.approx(6.338, abs=0.001)
        assert latest("b3-main-meter")["energy_kwh"]["value"] == pytest.approx(814.39, abs=0.01)

        events = gw.get("/api/v1/events").json()["events"]
        plates = {
            (e["device"], e["attrs"].get("plate"))
            for e in events
            if e["event"] == "vehicle_entered"
        }
        assert plates == {("lot-entry", "KH35192"), ("lot-exit", "粤FQK883")}
        granted = [e for e in events if e["event"] == "access_granted"]
        assert [(e["device"], e["attrs"]["person"]) for e in granted] == [("b3-gate", "1021")]

        devices = {d["id"]: d for d in gw.get("/api/v1/devices").json()["devices"]}
        discovered = {d["source"]: d for d in devices.values() if not d["registered"]}
        assert {"Basement Leak", "Laundry Plug", "Front Door Lock", "meter-b3-12"} <= set(
            discovered
        )
        assert discovered["meter-b3-12"]["latest"]["volume_m3"]["value"] == pytest.approx(6.057)
        metrics = gw.get("/metrics").text
        assert (
            'courtyard_adapter_ignored_total{adapter="zigbee2mqtt",reason="bridge_log"}' in metrics
        )
        rows = [e for e in events if e["device"] == "lot-space-7"]
        assert rows == []  # the sensor's readings are telemetry; its one uplink stored once:
        history = gw.get("/api/v1/devices/lot-space-7/readings", field="occupied").json()
        assert [p["value"] for p in history["points"]] == [1]
    finally:
        for stub in mqtt_stubs:
            stub.stop()
