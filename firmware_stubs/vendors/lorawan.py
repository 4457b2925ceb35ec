"""LoRaWAN devices behind a network server: a ChirpStack v4 application with an NWave NPS405
parking sensor, and The Things Stack v3 with an Axioma Qalcosonic W1 water meter whose
uplinks the server decodes itself.

ChirpStack's integration events as its documentation describes them (``application/<app>/
device/<devEUI>/event/up``: ``deduplicationId``, ``time``, ``deviceInfo``, ``fCnt``,
``fPort``, ``data`` base64, ``rxInfo``, ``txInfo``); the NPS405 payload from
TheThingsNetwork/lorawan-devices vendor/nwave (fPort 1, one byte, bit 0 occupied). The Things
Stack's ``v3/<app>@<tenant>/devices/<id>/up`` with ``uplink_message`` (``f_cnt``,
``frm_payload``, ``decoded_payload``, ``rx_metadata``, ``settings``, ``received_at``).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from firmware_stubs.vendors.mqtt_side import MqttSide


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ChirpStackApplication(MqttSide):
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        application: str = "17c82e96-be03-4f38-aef3-f83d48582d97",
        dev_eui: str = "0101010101010101",
    ) -> None:
        super().__init__(f"chirpstack-{application[:8]}", port, host)
        self.application, self.dev_eui = application, dev_eui
        self.f_cnt = 0

    def uplink(self, occupied: bool, repeat: int = 1) -> None:
        """One NPS405 status uplink (sent ``repeat`` times, as a network server may)."""
        self.f_cnt += 1
        body = {
            "deduplicationId": str(uuid.uuid4()),
            "time": _now(),
            "deviceInfo": {
                "tenantName": "ChirpStack",
                "applicationId": self.application,
                "applicationName": "parking",
                "deviceProfileName": "NWave NPS405",
                "deviceName": "space-7",
                "devEui": self.dev_eui,
            },
            "devAddr": "00189440",
            "dr": 1,
            "fCnt": self.f_cnt,
            "fPort": 1,
            "data": base64.b64encode(bytes([0x95 if occupied else 0x94])).decode(),
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -36, "snr": 10.5}],
            "txInfo": {
                "frequency": 867100000,
                "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11}},
            },
        }
        topic = f"application/{self.application}/device/{self.dev_eui}/event/up"
        for _ in range(repeat):
            self.publish(topic, body)


class TheThingsStackApplication(MqttSide):
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        application: str = "water",
        tenant: str = "ttn",
        device: str = "meter-b3-12",
    ) -> None:
        super().__init__(f"tts-{application}", port, host)
        self.application, self.tenant, self.device = application, tenant, device
        self.f_cnt = 0
        self.litres = 6054

    def uplink(self, litres_used: int = 0) -> None:
        self.f_cnt += 1
        self.litres += litres_used
        body = {
            "end_device_ids": {
                "device_id": self.device,
                "application_ids": {"application_id": self.application},
            },
            "received_at": _now(),
            "uplink_message": {
                "f_port": 100,
                "f_cnt": self.f_cnt,
                # the field names of the Qalcosonic W1 codec in lorawan-devices
                "decoded_payload": {
                    "current_volume_m3": self.litres / 1000,
                    "backflow": False,
                    "leakage": False,
                    "burst": False,
                    "low_battery": False,
                },
                "rx_metadata": [{"rssi": -35, "snr": 5}],
                "settings": {
                    "frequency": "868500000",
                    "data_rate": {"lora": {"spreading_factor": 7}},
                },
                "received_at": _now(),
            },
        }
        self.publish(f"v3/{self.application}@{self.tenant}/devices/{self.device}/up", body)
