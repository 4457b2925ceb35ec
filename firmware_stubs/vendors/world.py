"""Every vendor stub together, alive: ``python -m firmware_stubs vendors`` (and ``courtyard
demo``) runs a Zigbee2MQTT bridge, a Tasmota plug, a Shelly Pro 3EM, ChirpStack and The
Things Stack applications, a Hikvision controller and two plate cameras, with the community
file bindings and gateway ``[[adapters]]`` entries that make them Courtyard devices."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable

from firmware_stubs.vendors.http_push import AnprCamera, HikvisionController, VzenithCamera
from firmware_stubs.vendors.lorawan import ChirpStackApplication, TheThingsStackApplication
from firmware_stubs.vendors.mqtt_side import MqttSide
from firmware_stubs.vendors.shelly import ShellyPro3EM
from firmware_stubs.vendors.tasmota import TasmotaPlug
from firmware_stubs.vendors.zigbee2mqtt import Zigbee2MqttBridge

KINDS = ("zigbee2mqtt", "tasmota", "shelly", "chirpstack", "tts")
PLATES = ("粤FQK883", "KH35192", "沪A12345", "京N8P8F8", "B4ND1T", None)


def token(seed: str, device: str) -> str:
    """A device's ingest token, derived from the simulator's seed (like its secrets)."""
    return hashlib.sha256(f"{seed}:ingest:{device}".encode()).hexdigest()[:32]


class Ecosystems:
    """The vendor devices of one community, pushing to the gateway at ``api``."""

    def __init__(
        self,
        host: str,
        port: int,
        api: str,
        *,
        seed: str,
        community: str = "c1",
        rate: float = 1.0,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.community, self.seed, self.rate = community, seed, rate
        self.bridge = Zigbee2MqttBridge(port, host)
        self.plug = TasmotaPlug(port, host)
        self.em = ShellyPro3EM(port, host)
        self.chirpstack = ChirpStackApplication(port, host)
        self.tts = TheThingsStackApplication(port, host)
        self.mqtt: list[MqttSide] = [self.bridge, self.plug, self.em, self.chirpstack, self.tts]
        if credentials is not None:  # a broker with accounts: one per ecosystem, by its kind
            for kind, stub in zip(KINDS, self.mqtt, strict=True):
                account = f"adapter-{kind}-{community}"
                if account in credentials:
                    stub.login(account, credentials[account])
        ingest = f"{api.rstrip('/')}/api/v1/ingest"
        self.controller = HikvisionController(f"{ingest}/hikvision?token={token(seed, 'hik-gate')}")
        self.anpr = AnprCamera(f"{ingest}/hikvision-anpr?token={token(seed, 'anpr-entry')}")
        self.vzenith = VzenithCamera(f"{ingest}/vzenith?token={token(seed, 'vz-exit')}")
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vendors", daemon=True)

    def registry_toml(self) -> str:
        """The bindings; the leak sensor, the plug, the lock and the water meter are left
        unbound, to show up as discovered devices."""

        def bind(device: str, cls: str, adapter: str, source: str = "", push: bool = False) -> str:
            out = [
                "[[devices]]",
                f'id = "{device}"',
                f'community = "{self.community}"',
                f'class = "{cls}"',
                f'adapter = "{adapter}"',
            ]
            out += [f'source = "{source}"'] if source else []
            out += [f'ingest_token = "{token(self.seed, device)}"'] if push else []
            return "\n".join(out) + "\n"

        return "\n".join(
            [
                "# Devices of other ecosystems (firmware_stubs/vendors), bound by their source",
                bind("z2m-b1-door", "access", "zigbee2mqtt", "0x00158e5202e6be17"),
                bind("tasmota-pow1", "meter", "tasmota", "pow1"),
                bind("shelly-main-meter", "meter", "shelly", self.em.prefix),
                bind("lora-space-7", "parking", "chirpstack", self.chirpstack.dev_eui),
                bind("hik-gate", "access", "hikvision", self.controller.mac, push=True),
                bind("anpr-entry", "parking", "hikvision-anpr", push=True),
                bind("vz-exit", "parking", "vzenith", self.vzenith.serial, push=True),
            ]
        )

    def start(self) -> None:
        for stub in self.mqtt:
            stub.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for stub in self.mqtt:
            stub.stop()

    def _run(self) -> None:
        jobs: list[tuple[float, Callable[[], object]]] = [
            (10, self.plug.sensor),
            (10, self.em.report),
            (30, lambda: self.chirpstack.uplink(self.rng.random() < 0.5)),
            (60, lambda: self.tts.uplink(self.rng.randint(0, 40))),
            (15, lambda: self.bridge.meter(self.rng.choice((0.0, 60.0, 1800.0)))),
            (20, self._door),
            (25, self._access),
            (40, lambda: self.anpr.read(self.rng.choice(PLATES))),
            (45, lambda: self.vzenith.read(self.rng.choice(PLATES[:4]) or "")),
        ]
        due = [self.rng.uniform(1, period) / self.rate for period, _ in jobs]
        tick = 0.0
        while not self._stop.wait(0.5):
            tick += 0.5
            for i, (period, job) in enumerate(jobs):
                if tick >= due[i]:
                    due[i] = tick + period / self.rate
                    try:
                        job()
                    except OSError:  # the gateway restarting: the next round tries again
                        continue

    def _door(self) -> None:
        self.bridge.set_door_open(True)
        threading.Timer(3.0, self.bridge.set_door_open, (False,)).start()

    def _access(self) -> None:
        roll = self.rng.random()
        if roll < 0.8:
            self.controller.card()
        elif roll < 0.95:
            self.controller.card("55512345", known=False)
        else:
            self.controller.force_door()
