"""Alert latency: a door's ``door_forced`` publish to the signed ``alert.raised`` webhook at a
real receiver, under background load.

A private Mosquitto, the gateway as a child process (``courtyard serve``), a receiver that
verifies every signature (standardwebhooks), and the flood generator publishing meter
telemetry at ``--rate`` messages/s (QoS 1) while ``--alerts`` doors are forced one by one.

    .venv/bin/python bench/alert_latency.py [--rate 5000] [--alerts 200] [--interval 0.05]

Prints one JSON line: p50/p99/max in ms, and the background rate really achieved.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.latency import flood_process  # noqa: E402
from tests.support.community import config, registry  # noqa: E402
from tests.support.servers import GatewayProcess, Mosquitto  # noqa: E402
from tests.support.webhook_receiver import Receiver  # noqa: E402


class RemoteReceiver:
    """The receiver in a process of its own (the platform is not in the publisher's process:
    sharing one interpreter lock with the MQTT clients would slow it, not the gateway)."""

    def __init__(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=_serve_receiver, args=(child,), daemon=True)
        self.proc.start()
        self.url = self.conn.recv()

    def _ask(self, what: str) -> Any:
        self.conn.send(what)
        return self.conn.recv()

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self._ask("received") if r["type"] == type_]

    @property
    def bad_signatures(self) -> int:
        return int(self._ask("bad"))

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(5)


def _serve_receiver(conn: Any) -> None:
    r = Receiver(strict_time=True)
    conn.send(r.url)
    while (what := conn.recv()) != "stop":
        with r.lock:
            conn.send(list(r.received) if what == "received" else r.bad_signatures)
    r.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(rate: int, alerts: int, interval: float, verbose: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker")
        broker.start()
        receiver = RemoteReceiver()
        gw = GatewayProcess(
            Path(tmp) / "gw",
            mqtt_url=broker.url,
            registry=registry(alerts),
            extra=config(receiver.url),
        )
        flood = None
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-doors")
        # a bystander subscriber splits the latency: broker delivery vs the gateway's part
        seen: dict[str, float] = {}
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watch")

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            seen.setdefault(msg.topic.split("/")[3], time.time())

        sub.on_message = on_message
        try:
            gw.start()
            duration = alerts * interval + 8
            if rate > 0:
                flood = flood_process(broker.port, 1000, int(rate * duration), rate, engine="paho")
                time.sleep(4)  # steady load (the 1,000 flood devices discovered) first
            assert gw.proc is not None
            gw_proc = psutil.Process(gw.proc.pid)
            gw_proc.cpu_percent()
            sub.connect("127.0.0.1", broker.port)
            sub.subscribe("community/c1/access/+/event", qos=1)
            sub.loop_start()
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            sent: dict[str, float] = {}
            for i in range(alerts):
                door = f"door-{i:03d}"
                body = json.dumps({"ts": int(time.time() * 1000), "event": "door_forced"})
                sent[door] = time.time()
                pub.publish(f"community/c1/access/{door}/event", body, qos=1)
                time.sleep(interval)
            cpu = gw_proc.cpu_percent()
            deadline = time.monotonic() + 30
            while len(receiver.of_type("alert.raised")) < alerts and time.monotonic() < deadline:
                time.sleep(0.05)
            got = {r["data"]["device"]: r["at"] for r in receiver.of_type("alert.raised")}
            lat = [(got[d] - t0) * 1000 for d, t0 in sent.items() if d in got]
            if verbose:
                start = min(sent.values())
                slow = sorted(((got[d] - t0) * 1000, t0 - start) for d, t0 in sent.items())
                print("slowest (ms, at s):", [(round(a), round(b, 2)) for a, b in slow[-12:]])
            via_broker = [(seen[d] - t0) * 1000 for d, t0 in sent.items() if d in seen]
            in_gateway = [(got[d] - seen[d]) * 1000 for d in sent if d in got and d in seen]
            queued_p99 = 0.0
            for line in gw.get("/metrics").text.splitlines():
                if line.startswith("courtyard_webhook_delivery_latency_ms") and '"0.99"' in line:
                    queued_p99 = float(line.rsplit(" ", 1)[1])
            background = {}
            if flood is not None:
                out, _ = flood.communicate(timeout=120)
                background = json.loads(out.strip().splitlines()[-1])
            return {
                "alerts": alerts,
                "delivered": len(lat),
                "bad_signatures": receiver.bad_signatures,
                "p50_ms": round(statistics.median(lat), 1),
                "p99_ms": round(percentile(lat, 0.99), 1),
                "max_ms": round(max(lat), 1),
                "broker_to_bystander_p99_ms": round(percentile(via_broker, 0.99), 1),
                "bystander_to_webhook_p99_ms": round(percentile(in_gateway, 0.99), 1),
                "queued_to_delivered_p99_ms": queued_p99,
                "background_rate_msg_s": round(float(background.get("rate", 0)), 0),
                "gateway_cpu_pct": round(cpu, 0),
                "load_avg_1m": round(psutil.getloadavg()[0], 2),
            }
        finally:
            pub.loop_stop()
            sub.loop_stop()
            if flood is not None and flood.poll() is None:
                flood.kill()
            gw.stop()
            receiver.close()
            broker.stop()


def bench(quick: bool) -> dict[str, list[float]]:
    """``latency.webhook_{p50,p99,max}_ms`` at 5,000 readings/s of background load, one value
    per run (quick: 1 run of 100 alerts, full: 3 runs of 200)."""
    out: dict[str, list[float]] = {
        "latency.webhook_p50_ms": [],
        "latency.webhook_p99_ms": [],
        "latency.webhook_max_ms": [],
    }
    for _ in range(1 if quick else 3):
        alerts = 100 if quick else 200
        r = run(5000, alerts, 0.05)
        print(f"[alert_latency] {json.dumps(r)}", file=sys.stderr, flush=True)
        if r["delivered"] < alerts or r["bad_signatures"]:
            raise RuntimeError(
                f"{r['delivered']} of {alerts} alerts delivered, {r['bad_signatures']} bad"
            )
        for q in ("p50", "p99", "max"):
            out[f"latency.webhook_{q}_ms"].append(r[f"{q}_ms"])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=5000, help="background messages/s (0: none)")
    p.add_argument("--alerts", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.05, help="seconds between doors")
    p.add_argument("--verbose", action="store_true", help="list the slowest deliveries")
    a = p.parse_args()
    print(json.dumps(run(a.rate, a.alerts, a.interval, a.verbose)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
