"""Commands through adapters (CONTRACT.md 7.4) end to end: a Zigbee2MQTT lock over MQTT, a
Shelly relay driving a barrier, and a Hikvision door opened through its ISAPI endpoint with
digest auth; each answered once the device confirms, each audited with its path."""

from __future__ import annotations

from typing import Any

import httpx

from firmware_stubs.vendors.http_push import HikvisionController, IsapiDoorServer
from firmware_stubs.vendors.shelly import ShellyPlus2PM
from firmware_stubs.vendors.zigbee2mqtt import Zigbee2MqttBridge
from tests.support.wait import wait_for

TOKEN = "f6" * 16
OTHER_TOKEN = "a7" * 16


def registry(isapi_url: str) -> str:
    return f"""
[[communities]]
id = "c1"

[[devices]]
id = "front-lock"
community = "c1"
class = "access"
adapter = "zigbee2mqtt"
source = "Front Door Lock"
commands = true

[[devices]]
id = "leak-sensor"
community = "c1"
class = "meter"
adapter = "zigbee2mqtt"
source = "Basement Leak"

[[devices]]
id = "lot-barrier"
community = "c1"
class = "parking"
adapter = "shelly"
source = "shellyplus2pm-gate"
commands = true

[[devices]]
id = "b3-gate"
community = "c1"
class = "access"
adapter = "hikvision"
source = "bc:5e:33:62:2a:5c"
ingest_token = "{TOKEN}"
commands = true
isapi_url = "{isapi_url}"
username = "admin"
password = "right-pass-9"
door = 1

[[devices]]
id = "b4-gate"
community = "c1"
class = "access"
adapter = "hikvision"
source = "bc:5e:33:62:2a:5d"
ingest_token = "{OTHER_TOKEN}"
commands = true
isapi_url = "{isapi_url}"
username = "admin"
password = "wrong-pass"
door = 1
"""


GATEWAY = """
[[adapters]]
kind = "zigbee2mqtt"
community = "c1"

[[adapters]]
kind = "shelly"
community = "c1"
"""


def test_adapter_devices_are_commanded_confirmed_and_audited(mosquitto, gateway_factory):
    controller = HikvisionController("http://127.0.0.1:1/")  # its URL is set once the gw runs
    server = IsapiDoorServer("admin", "right-pass-9", controller)
    server.start()
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=registry(server.url), extra=GATEWAY)
    gw.start()
    bridge, relay = Zigbee2MqttBridge(mosquitto.port), ShellyPlus2PM(mosquitto.port)
    try:
        for stub in (bridge, relay):
            stub.start()
            assert stub.wait_connected(10)
        relay.switch_status(0)
        controller.url = f"{gw.api}/api/v1/ingest/hikvision?token={TOKEN}"
        assert controller.card() == 200  # the controller is heard: online
        other = HikvisionController(
            f"{gw.api}/api/v1/ingest/hikvision?token={OTHER_TOKEN}", mac="bc:5e:33:62:2a:5d"
        )
        assert other.card() == 200

        def online(device: str) -> bool:
            return bool(gw.get(f"/api/v1/devices/{device}").json()["online"])

        wait_for(lambda: all(map(online, ("front-lock", "lot-barrier", "b3-gate"))), what="online")
        headers = {"Authorization": f"Bearer {gw.key}"}

        def command(device: str, action: str, args: dict[str, Any]) -> httpx.Response:
            return httpx.post(
                f"{gw.api}/api/v1/devices/{device}/commands",
                json={"action": action, "args": args},
                headers=headers,
                timeout=15,
            )

        r = command("front-lock", "unlock", {"seconds": 5})
        assert r.status_code == 200, r.text
        assert bridge.commands == [{"state": "UNLOCK"}]
        assert gw.get("/api/v1/devices/front-lock").json()["latest"]["locked"]["value"] is False

        r = command("lot-barrier", "open_barrier", {"lane": "in"})
        assert r.status_code == 200, r.text
        assert relay.outputs[0] is True

        r = command("b3-gate", "unlock", {"seconds": 5})
        assert r.status_code == 200, r.text
        assert server.opened == [1]

        # the controller logged the remote open and pushed it: door_unlocked, method remote
        def remote_opens() -> list[dict[str, Any]]:
            events = gw.get("/api/v1/events", device="b3-gate").json()["events"]
            return [e for e in events if e["event"] == "door_unlocked"]

        (opened,) = wait_for(remote_opens, what="the pushed remote open")  # type: ignore[misc]
        assert opened["attrs"]["method"] == "remote"

        r = command("b4-gate", "unlock", {"seconds": 5})
        assert r.status_code != 200 and server.opened == [1]

        r = command("leak-sensor", "open_barrier", {"lane": "in"})
        assert r.status_code != 200  # bound, but not commandable

        # events the controller kept while the gateway could not hear it come from its log
        controller.pushing = False
        controller.card("11112222")
        controller.force_door()
        controller.pushing = True
        assert controller.card("33334444") == 200

        def events(name: str) -> list[dict[str, Any]]:
            all_events = gw.get("/api/v1/events", device="b3-gate").json()["events"]
            return [e for e in all_events if e["event"] == name]

        wait_for(lambda: events("door_forced"), what="the forced door found in the log")
        # in the order they reached the journal: the push first, then what the log held
        cards = [e["attrs"]["credential"] for e in events("access_granted")]
        assert cards == ["3728410153", "33334444", "11112222"], cards
        assert server.searches == 1
        assert "courtyard_event_log_filled_total 2" in gw.get("/metrics").text

        entries = gw.get("/api/v1/audit").json()["entries"]
        paths = {(e["device"], e["outcome"], e["path"]) for e in entries}
        assert {
            ("front-lock", "ok", "zigbee2mqtt"),
            ("lot-barrier", "ok", "shelly"),
            ("b3-gate", "ok", "hikvision"),
            ("b4-gate", "failed", "hikvision"),
        } <= paths
        assert "right-pass-9" not in gw.logs() and "wrong-pass" not in gw.logs()
    finally:
        bridge.stop()
        relay.stop()
        server.stop()
