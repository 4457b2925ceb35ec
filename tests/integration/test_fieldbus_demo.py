"""The demo's wiring: a simulated meter room on ptys, its ``serial_config()`` put into the
settings, a gateway in-process: meters and the locker show up registered, under their bus."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from firmware_stubs.serial.room import start_room
from gateway.config import Registry, load_settings
from gateway.fieldbus.settings import parse_buses
from gateway.service import Gateway
from tests.support.servers import Mosquitto


async def test_room_wired_into_a_gateway(tmp_path: Path, mosquitto: Mosquitto) -> None:
    room = start_room(tmp_path / "pty", lockers=1, cjt188=1, poll_every_s=0.5)
    try:
        settings = load_settings(
            None,
            {
                "COURTYARD_STORE_PATH": str(tmp_path / "courtyard.db"),
                "COURTYARD_MQTT_URL": mosquitto.url,
            },
        )
        settings = settings.model_copy(update={"serial": parse_buses(room.serial_config())})
        gw = Gateway(settings, Registry())
        await gw.start()
        try:
            ids = [d["id"] for bus in room.config for d in bus["devices"]]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                states = [gw.store.devices.get(i) for i in ids]
                if all(st is not None and st.online and st.latest for st in states):
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"not all online with readings: {states}")
            reg = gw.registry.by_id()
            assert reg["m-room-sdm630-001"].parent == "bus-room-modbus"
            assert reg["lk-room-0"].device_class == "locker"
            assert reg["lk-room-0"].parent == "bus-room-locks"
            assert gw.store.devices["m-room-dlt645-001"].latest["energy_kwh"][0] > 0
            assert gw.store.devices["bus-room-modbus"].online is True
            water = room.device("w-room-cjt188-001")
            assert reg["w-room-cjt188-001"].device_class == "meter"
            got = gw.store.devices["w-room-cjt188-001"].latest["volume_m3"][0]
            assert 1234.56 < got <= water.expected()["volume_m3"]  # type: ignore[attr-defined]
        finally:
            await gw.stop()
    finally:
        room.stop()
