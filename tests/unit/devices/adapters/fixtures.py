"""One message of every kind each adapter reads, with its public source.

Payloads copied from a public capture or document say so; the others are built from the
field lists of the cited page (the notes in protocols/ecosystem/ name every source), and
say that instead. The tests of each adapter check the decoded values of these; the checks
across every adapter (test_checks.py) run over all of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fixture:
    adapter: str
    topic: str
    payload: bytes
    options: Mapping[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


# Zigbee2MQTT

Z2M: dict[str, Fixture] = {
    # built from the MCCGQ11LM page's exposes (contact, battery %, voltage mV, linkquality),
    # with CONTRACT.md 7.5's example values but the door open ("contact": false)
    "contact": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/0x00158e5202e6be17",
        _json(
            {
                "battery": 100,
                "contact": False,
                "device_temperature": 22,
                "linkquality": 110,
                "power_outage_count": 7,
                "voltage": 3015,
            }
        ),
    ),
    # built from the SJCGQ11LM exposes, with battery as the string "80.00" that firmware of
    # 2019 sent (Koenkk/zigbee2mqtt#663)
    "leak": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/Basement Leak",
        _json({"water_leak": True, "battery": "80.00", "voltage": 2985, "linkquality": 57}),
    ),
    # TS011F_plug_1 page exposes: state, power W, energy kWh, voltage V, current A, child_lock
    "plug": Fixture(
        "zigbee2mqtt",
        "zigbee2mqttcc1352/floor 2/laundry plug",  # base topic of Koenkk/zigbee2mqtt#14934
        _json(
            {
                "child_lock": "UNLOCK",
                "current": 0.53,
                "energy": 12.47,
                "indicator_mode": None,
                "linkquality": 156,
                "power": 118,
                "power_outage_memory": "restore",
                "state": "ON",
                "voltage": 229,
            }
        ),
        {"base_topic": "zigbee2mqttcc1352"},
    ),
    # zigbee-herdsman-converters#3508, verbatim: a Yale lock's state
    "lock": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/Driveway Door Lock",
        b'{"battery":98,"linkquality":96,"lock_state":"unlocked","state":"UNLOCK"}',
    ),
    # YRD256HA20BP page: action, action_source_name, action_user with a cached state
    "lock_action": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/Front Door",
        _json(
            {
                "action": "keypad_unlock",
                "action_source_name": "keypad",
                "action_user": 3,
                "battery": 88,
                "lock_state": "unlocked",
                "state": "UNLOCK",
            }
        ),
    ),
    # Koenkk/zigbee2mqtt#12230, verbatim: the cached state after an action, "action": null
    "lock_reset": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/Front Door",
        b'{ "battery": 100, "linkquality": 255, "lock_state": "unlocked", "state": "UNLOCK", '
        b'"action": null, "action_source": 0, "action_source_name": null, '
        b'"action_source_user": null, "action_user": 2 }',
    ),
    # partial state: one key only (cache_state off)
    "partial": Fixture("zigbee2mqtt", "zigbee2mqtt/Hall Door", b'{"contact":true}'),
    # device-availability page: JSON (2.x) and the legacy text (1.x)
    "availability": Fixture(
        "zigbee2mqtt", "zigbee2mqtt/Front Door/availability", b'{"state":"offline"}'
    ),
    "availability_legacy": Fixture("zigbee2mqtt", "zigbee2mqtt/Front Door/availability", b"online"),
    # Koenkk/zigbee2mqtt#21773, verbatim: the bridge's retained state
    "bridge_state": Fixture("zigbee2mqtt", "zigbee2mqtt/bridge/state", b'{"state":"online"}'),
    # stas-demydiuk/domoticz-zigbee2mqtt-plugin#22, verbatim: a bridge log message
    "bridge_log": Fixture(
        "zigbee2mqtt",
        "zigbee2mqtt/bridge/log",
        b'{"type":"devices","message":[{"ieeeAddr":"0x00158d00023866e9","type":"EndDevice",'
        b'"model":"MCCGQ11LM","friendly_name":"0x00158d00023866e9"}]}',
    ),
    # zigbee-herdsman-converters#3508, verbatim: the command a client sent
    "set": Fixture("zigbee2mqtt", "zigbee2mqtt/Driveway Door Lock/set", b'{"state":"LOCK"}'),
    # Koenkk/zigbee2mqtt#18852: the plain string a Home Assistant client sent to /set
    "set_plain": Fixture("zigbee2mqtt", "zigbee2mqtt/Front Door/set", b"UNLOCK"),
    # mqtt_topics_and_messages: /get names the attributes to read
    "get": Fixture("zigbee2mqtt", "zigbee2mqtt/Front Door/get", b'{"state":""}'),
}

# Tasmota

TASMOTA: dict[str, Fixture] = {
    # tasmota docs, Sonoff-Pow-R2.md, verbatim
    "sensor": Fixture(
        "tasmota",
        "tele/pow1/SENSOR",
        b'{"Time":"2018-02-15T17:37:10","ENERGY":{"TotalStartTime":"2018-11-14T18:39:40",'
        b'"Total":6.294,"Yesterday":5.340,"Today":0.954,"Period":217,"Power":2635,'
        b'"ApparentPower":2650,"ReactivePower":282,"Factor":0.99,"Voltage":227,"Current":11.661}}',
    ),
    # tasmota docs, Sonoff-Pow-R2.md, verbatim
    "status8": Fixture(
        "tasmota",
        "stat/pow1/STATUS8",
        b'{"StatusSNS":{"Time":"2018-11-15T08:54:18","ENERGY":{"TotalStartTime":'
        b'"2018-11-14T18:39:40","Total":6.404,"Yesterday":5.340,"Today":1.064,"Power":2629,'
        b'"ApparentPower":2645,"ReactivePower":288,"Factor":0.99,"Voltage":226,"Current":11.677}}}',
    ),
    # evcc-io/evcc meter/tasmota/types_test.go (#5731), verbatim: a two-channel device
    "status10_channels": Fixture(
        "tasmota",
        "stat/dualr3/STATUS10",
        b'{"StatusSNS":{"Time":"2023-01-09T18:57:39","Switch1":"ON","Switch2":"OFF",'
        b'"ANALOG":{"Temperature":49.6},"ENERGY":{"TotalStartTime":"2023-01-09T13:59:15",'
        b'"Total":0.077,"Yesterday":0.000,"Today":0.077,"Power":[8.15,0],"ApparentPower":[5,0],'
        b'"ReactivePower":[4,0],"Factor":[0.00,0.00],"Frequency":50,"Voltage":237,'
        b'"Current":[0.000,0.000]},"TempUnit":"C"}}',
    ),
    # tasmota docs, DeepSleep.md, verbatim (with a FullTopic reordered as %topic%/%prefix%/)
    "state": Fixture(
        "tasmota",
        "demo-sensor/tele/STATE",
        b'{"Time":"2021-06-27T15:03:44+02:00","Uptime":"0T00:00:13","UptimeSec":13,"Heap":28,'
        b'"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"ON","Wifi":'
        b'{"AP":1,"SSId":"DEMOAP","BSSId":"XX:XX:XX:XX:XX:XX","Channel":1,"Mode":"11n",'
        b'"RSSI":86,"Signal":-57,"LinkCount":1,"Downtime":"0T00:00:07"}}',
        {"full_topic": "%topic%/%prefix%/"},
    ),
    # Tasmota's MQTT docs: the retained LWT, "Offline" the broker's Last Will
    "lwt": Fixture("tasmota", "tele/tasmota_5A3F2C/LWT", b"Offline"),
    # tasmota docs, DeepSleep.md, verbatim: the relay state after a command
    "power_json": Fixture("tasmota", "stat/demo-sensor/POWER", b'{"POWER":"OFF"}'),
    "power_text": Fixture("tasmota", "stat/demo-sensor/POWER2", b"ON"),
    "result": Fixture("tasmota", "stat/demo-sensor/RESULT", b'{"POWER1":"ON"}'),
    # CONTRACT.md 7.4: a gate relay commanded through cmnd/<topic>/POWER
    "command": Fixture("tasmota", "cmnd/gate-relay/POWER", b"ON"),
    # tasmota docs, DeepSleep.md: an empty cmnd/.../POWER only asks for the state
    "query": Fixture("tasmota", "cmnd/demo-sensor/POWER", b""),
}

# Shelly Gen2/Gen3

SHELLY: dict[str, Fixture] = {
    # iobroker-community-adapters/ioBroker.shelly#1592, verbatim (1PM Mini Gen3)
    "switch": Fixture(
        "shelly",
        "shelly1pmminig3-5432044edbc0/status/switch:0",
        b'{"id":0,"source":"MQTT","tag":null, "output":true, "apower":11.5, "voltage":240.3, '
        b'"freq":50.0, "current":0.073, "aenergy":{"total":152669.987,"by_minute":'
        b'[0.000,0.000,0.000],"minute_ts":1788945240}, "ret_aenergy":{"total":0.000,'
        b'"by_minute":[0.000,0.000,0.000],"minute_ts":1788945240},"counts":{"on_time":44340,'
        b'"on_time_rst_ts":0,"switch_on":539,"switch_on_rst_ts":0,"on_above_thr":0,'
        b'"on_above_thr_rst_ts":0},"temperature":{"tC":55.0, "tF":131.0}}',
    ),
    # ioBroker.shelly#813 (Plus 2PM with a custom prefix), its switch:0 payload on channel 1
    "switch_channel": Fixture(
        "shelly",
        "shellyplus2pm-Einfahrt/status/switch:1",
        b'{"id":1, "source":"init", "output":false, "apower":0.0, "voltage":230.8, "freq":50.0, '
        b'"current":0.000, "pf":0.00, "aenergy":{"total":123.585,"by_minute":[1500.000,0.000,'
        b'0.000],"minute_ts":1698999959},"temperature":{"tC":44.9, "tF":112.9}}',
    ),
    # ioBroker.shelly#787 (Pro 3EM debug log), the em:0 status of ts 1678699574.847/.863
    "em": Fixture(
        "shelly",
        "shellypro3em-b0b21c10a1b8/status/em:0",
        b'{"id":0,"a_act_power":2401.6,"a_aprt_power":2466.2,"a_current":10.562,"a_pf":0.96,'
        b'"a_voltage":233.7,"b_act_power":406.0,"b_aprt_power":439.3,"b_current":1.858,'
        b'"b_pf":-0.93,"b_voltage":236.4,"c_act_power":228.6,"c_aprt_power":262.1,'
        b'"c_current":1.108,"c_pf":-0.87,"c_voltage":236.8,"n_current":null,'
        b'"total_act_power":3036.328,"total_aprt_power":3167.595,"total_current":13.528}',
    ),
    # built from the EMData field list (shelly-api-docs EMData), in Wh (evcc-io/evcc#7335)
    "emdata": Fixture(
        "shelly",
        "shellypro3em-b0b21c10a1b8/status/emdata:0",
        _json(
            {
                "id": 0,
                "a_total_act_energy": 512345.6,
                "a_total_act_ret_energy": 0,
                "b_total_act_energy": 204000.25,
                "b_total_act_ret_energy": 1500,
                "c_total_act_energy": 98000,
                "c_total_act_ret_energy": 0,
                "total_act": 814345.85,
                "total_act_ret": 1500,
            }
        ),
    ),
    # ioBroker.shelly#1592, verbatim: a NotifyStatus with only the fields that changed
    "notify_status": Fixture(
        "shelly",
        "shelly1pmminig3-5432044edbc0/events/rpc",
        b'{"src":"shelly1pmminig3-5432044edbc0","dst":"shelly1pmminig3-5432044edbc0/events",'
        b'"method":"NotifyStatus","params":{"ts":1788945292.88,"switch:0":{"apower":11.5,'
        b'"current":0.071}}}',
    ),
    # ioBroker.shelly#813, verbatim: a NotifyStatus of a component with no readings
    "notify_mqtt": Fixture(
        "shelly",
        "shelly1pmmini-Sat/events/rpc",
        b'{"src":"shelly1pmmini-348518e0c114","dst":"shelly1pmmini-Sat/events",'
        b'"method":"NotifyStatus","params":{"ts":1698999957.05,"mqtt":{"connected":true}}}',
    ),
    # shelly-api-docs Notifications: NotifyEvent (a button press)
    "notify_event": Fixture(
        "shelly",
        "shellyplus2pm-Einfahrt/events/rpc",
        _json(
            {
                "src": "shellyplus2pm-3ce90e2f7c34",
                "dst": "shellyplus2pm-Einfahrt/events",
                "method": "NotifyEvent",
                "params": {
                    "ts": 1698999960.13,
                    "events": [
                        {"component": "input:0", "id": 0, "event": "single_push", "ts": 1.7e9}
                    ],
                },
            }
        ),
    ),
    # shelly-api-docs Mqtt: <prefix>/online is "true", "false" as the Last Will
    "online": Fixture("shelly", "shellyplus2pm-Einfahrt/online", b"false"),
    # gist lordneon/140d47cd09e34d2737ad98290483a558: Switch.Set on <prefix>/rpc
    "rpc_set": Fixture(
        "shelly",
        "shellyplus1-a8032ab12345/rpc",
        b'{"id":1,"src":"courtyard","method":"Switch.Set","params":{"id":0,"on":true}}',
    ),
}

# LoRaWAN

QALCOSONIC_W1 = bytes(
    # vendor/axioma/qalcosonic-w1-codec.yaml, the "Enhanced 24h payload" example, verbatim
    [0x01, 0xAE, 0xAC, 0x98, 0x6A, 0x00, 0x32, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
    + [0x00, 0x00, 0x00, 0x00, 0x80, 0x03, 0x80, 0x00, 0x54, 0x00, 0x0E, 0x40, 0x05, 0x10]
    + [0x00, 0x48, 0x00, 0x02, 0x40, 0x02, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00]
    + [0x00] * 9
)
CHIRPSTACK_DEVICE = {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    "tenantName": "ChirpStack",
    "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
    "applicationName": "Test application",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
    "deviceProfileName": "Test device-profile",
    "deviceName": "Test device",
    "devEui": "0101010101010101",
    "tags": {"key": "value"},
}
CHIRPSTACK_UP = {
    # chirpstack-docs integrations/events.md, the `up` example, verbatim (fCnt 0 left out)
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": CHIRPSTACK_DEVICE,
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [
        {
            "gatewayId": "0016c001f153a14c",
            "uplinkId": 4217106255,
            "rssi": -36,
            "snr": 10.5,
            "context": "E3OWOQ==",
            "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
        }
    ],
    "txInfo": {
        "frequency": 867100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}},
    },
}
TTS_UP = {
    # lorawan-stack-docs integrations/mqtt, the uplink example, verbatim
    "end_device_ids": {
        "device_id": "dev1",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "4200000000000000",
        "join_eui": "4200000000000000",
        "dev_addr": "01DA1F15",
    },
    "correlation_ids": [
        "gs:conn:01D2CSNX7FJVKQPCVG612QF1TX",
        "gs:uplink:01D2CV8HF62ME0D7MZWE38HHH8",
        "ns:uplink:01D2CV8HF6FYJHKZ45YY1DB3MR",
        "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01D2CV8HF6XR7ZFVK768PDG3J4",
        "as:up:01D2CV8HNGJ57G25BW0FCZNY07",
    ],
    "uplink_message": {
        "session_key_id": "AWiZpAyXrAfEkUNkBljRoA==",
        "f_port": 15,
        "frm_payload": "VGVtcGVyYXR1cmUgPSAwLjA=",
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "eui-0242020000247803", "eui": "0242020000247803"},
                "time": "2019-01-29T13:02:34.981Z",
                "timestamp": 1283325000,
                "rssi": -35,
                "snr": 5,
                "uplink_token": "CiIKIAoUZXVpLTAyNDIwMjAwMDAyNDc4MDMSCAJCAgAAJHgDEMj49+ME",
            }
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
            "data_rate_index": 5,
            "coding_rate": "4/6",
            "frequency": "868500000",
            "gateway_channel_index": 2,
            "device_channel_index": 2,
        },
    },
}


def _chirpstack_up(**changes: Any) -> bytes:
    return _json({**CHIRPSTACK_UP, **changes})


def _tts_up(device: str, **changes: Any) -> bytes:
    up = {**TTS_UP["uplink_message"], **changes.pop("uplink_message", {})}
    ids = {**TTS_UP["end_device_ids"], "device_id": device}
    return _json({**TTS_UP, "end_device_ids": ids, "uplink_message": up, **changes})


LORAWAN: dict[str, Fixture] = {
    "chirpstack_up": Fixture(
        "chirpstack",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
        _chirpstack_up(),
    ),
    # the docs' uplink with the NPS405 yaml's parking-status byte 0x95 on fPort 1, a frame
    # counter, and the device profile named after the sensor
    "chirpstack_nps405": Fixture(
        "chirpstack",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
        _chirpstack_up(
            fCnt=4021,
            data=base64.b64encode(b"\x95").decode(),
            deviceInfo={**CHIRPSTACK_DEVICE, "deviceProfileName": "Nwave NPS405 parking"},
        ),
    ),
    # the docs' uplink on fPort 2 with the `object` a device-profile codec adds (the notes
    # cite helium/mappers#130 for a real one); here the NPS405 yaml's heartbeat output for
    # its bytes 00 D3 D8 00 59 0B
    "chirpstack_object": Fixture(
        "chirpstack",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
        _chirpstack_up(
            fCnt=88,
            fPort=2,
            data="ANPYAFkL",
            object={
                "type": "heartbeat",
                "occupied": False,
                "battery_voltage": 3.344,
                "temperature": -10,
                "battery_health": "normal",
                "hw_health_status": 0,
            },
        ),
    ),
    # chirpstack-docs events.md, the `status` example, verbatim
    "chirpstack_status": Fixture(
        "chirpstack",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/status",
        _json(
            {
                "deduplicationId": "bf2a9746-1c8b-49be-a92e-f0b89c8534e4",
                "time": "2022-07-18T09:35:06.927172638+00:00",
                "deviceInfo": CHIRPSTACK_DEVICE,
                "margin": 10,
                "batteryLevel": 88.3,
            }
        ),
    ),
    # chirpstack-docs events.md, the `join` example
    "chirpstack_join": Fixture(
        "chirpstack",
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/join",
        _json(
            {
                "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
                "time": "2022-07-18T09:33:28.823500726+00:00",
                "deviceInfo": CHIRPSTACK_DEVICE,
                "devAddr": "00189440",
            }
        ),
    ),
    "tts_up": Fixture("tts", "v3/app1@ttn/devices/dev1/up", _tts_up("dev1")),
    # the docs' uplink carrying the Qalcosonic W1 yaml example on fPort 100, with the
    # device-repository ids TTS adds and its receive time
    "tts_qalcosonic": Fixture(
        "tts",
        "v3/water@ttn/devices/meter-b3-12/up",
        _tts_up(
            "meter-b3-12",
            received_at="2026-09-02T23:10:02.118231Z",
            uplink_message={
                "f_port": 100,
                "f_cnt": 311,
                "frm_payload": base64.b64encode(QALCOSONIC_W1).decode(),
                "version_ids": {"brand_id": "axioma", "model_id": "qalcosonic-w1"},
            },
        ),
    ),
    # the docs' uplink with a payload formatter's output: the Qalcosonic codec's fields
    "tts_decoded": Fixture(
        "tts",
        "v3/water@ttn/devices/meter-b3-14/up",
        _tts_up(
            "meter-b3-14",
            received_at="2026-09-03T01:00:00Z",
            uplink_message={
                "f_port": 100,
                "f_cnt": 12,
                "decoded_payload": {
                    "current_volume_m3": 6.054,
                    "backflow": True,
                    "leakage": False,
                    "burst": False,
                    "low_battery": False,
                },
            },
        ),
    ),
    # lorawan-stack-docs integrations/mqtt: the join message
    "tts_join": Fixture(
        "tts",
        "v3/app1@ttn/devices/dev1/join",
        _json({"end_device_ids": TTS_UP["end_device_ids"], "join_accept": {}}),
    ),
}

# Dahua VTO (elad-bar/DahuaVTO2MQTT MQTTEvents.MD)

DAHUA: dict[str, Fixture] = {
    # MQTTEvents.MD's AccessControl example (its comments removed)
    "access": Fixture(
        "dahua-vto",
        "DahuaVTO/AccessControl/Event",
        _json(
            {
                "Action": "Pulse",
                "Data": {
                    "CardNo": "",
                    "CardType": None,
                    "LocaleTime": "2020-03-02 20:24:08",
                    "Method": 4,
                    "Name": "OpenDoor",
                    "Password": "",
                    "ReaderID": "1",
                    "RecNo": 691,
                    "SnapURL": "",
                    "Status": 1,
                    "Type": "Entry",
                    "UTC": 1583173448,
                    "UserID": "",
                },
                "deviceType": "Device Model",
                "serialNumber": "Device Serial Number",
            }
        ),
    ),
    # the same event with the exit button (rroller/dahua#318: Method 5) on another prefix
    "access_button": Fixture(
        "dahua-vto",
        "gate-vto/AccessControl/Event",
        _json(
            {
                "Action": "Pulse",
                "Data": {
                    "Method": 5,
                    "Name": "OpenDoor",
                    "RecNo": 692,
                    "Status": 1,
                    "UTC": 1583173500,
                },
            }
        ),
        {"topic": "gate-vto"},
    ),
    # MQTTEvents.MD's CallNoAnswered example
    "call": Fixture(
        "dahua-vto",
        "DahuaVTO/CallNoAnswered/Event",
        _json(
            {
                "Action": "Start",
                "Data": {
                    "CallID": "1",
                    "IsEncryptedStream": False,
                    "LocaleTime": "2020-03-02 20:11:13",
                    "LockNum": 2,
                    "SupportPaas": False,
                    "TCPPort": 37777,
                    "UTC": 1583172673,
                },
            }
        ),
    ),
    # MQTTEvents.MD's BackKeyLight example: nothing for the vocabulary
    "other": Fixture(
        "dahua-vto",
        "DahuaVTO/BackKeyLight/Event",
        _json(
            {
                "Action": "Pulse",
                "Data": {"LocaleTime": "2020-03-02 20:24:07", "State": 8, "UTC": 1583173447},
            }
        ),
    ),
    # MQTTEvents.MD: publishing to <prefix>/Command/Open opens the door
    "open": Fixture("dahua-vto", "DahuaVTO/Command/Open", b"{}"),
}

# Serial frames, built by the framing rules each codec's docstring states (devices/serial/)

SERIAL: dict[str, Fixture] = {
    # DL/T 645-2007: read 00010000 (import energy) from 123456789012, and the reply 1234.56
    "dlt645_request": Fixture(
        "dlt645", "", _hex("fe fe fe fe 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16")
    ),
    "dlt645_reply": Fixture(
        "dlt645",
        "",
        _hex("fe fe fe fe 68 12 90 78 56 34 12 68 91 08 33 33 34 33 89 67 45 33 54 16"),
    ),
    # a signed BCD power reply: 02030000 = -1.2345 kW
    "dlt645_power": Fixture(
        "dlt645", "", _hex("fe fe fe fe 68 12 90 78 56 34 12 68 91 07 33 33 36 35 78 56 b4 71 16")
    ),
    # CJ/T 188-2004: read 901F from water meter 00000012345678, and its reply 1234.56 m3
    "cjt188_request": Fixture(
        "cjt188", "", _hex("fe fe 68 10 78 56 34 12 00 00 00 01 03 1f 90 00 3f 16")
    ),
    "cjt188_reply": Fixture(
        "cjt188",
        "",
        _hex(
            "fe fe 68 10 78 56 34 12 00 00 00 81 16 1f 90 00 56 34 12 00 2c 00 34 12 00 2c"
            " 00 30 41 09 05 26 20 00 00 d1 16"
        ),
    ),
    # lock board: status query to board 0, unlock lock 3 of board 1, board 0's status reply
    "lockboard_request": Fixture("lockboard", "", _hex("02 00 30 03 35")),
    "lockboard_unlock": Fixture("lockboard", "", _hex("02 12 31 03 48")),
    "lockboard_status": Fixture("lockboard", "", _hex("02 00 35 fb ff 00 00 03 34")),
    # Modbus RTU, SDM630: read 6 input registers from 0 (L1-L3 voltages), and the reply
    "modbus_request": Fixture("modbus", "", _hex("01 04 00 00 00 06 70 08"), {"model": "sdm630"}),
    "modbus_reply": Fixture(
        "modbus",
        "",
        _hex("01 04 0c 43 66 80 00 43 67 00 00 43 65 80 00 41 55"),
        {"model": "sdm630", "request": "01 04 00 00 00 06 70 08"},
    ),
}

ALL: dict[str, Fixture] = {
    f"{group}.{name}": fixture
    for group, fixtures in (
        ("zigbee2mqtt", Z2M),
        ("tasmota", TASMOTA),
        ("shelly", SHELLY),
        ("lorawan", LORAWAN),
        ("dahua", DAHUA),
        ("serial", SERIAL),
    )
    for name, fixture in fixtures.items()
}
"""Every fixture, by ``group.name``."""
