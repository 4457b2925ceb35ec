"""The reference a user would write by hand: paho-mqtt + influxdb-client, a Point per message.

    python bench/diy_paho.py --port P --client-id ID --messages N --influx URL --bucket B

Persistent session (clean_session off, QoS 1), json.loads, one influxdb-client ``Point`` per
message, the client's default batching write API; exits once N messages arrived and the write
API has flushed. Prints one JSON line: {"received": N, "seconds": s}.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import paho.mqtt.client as mqtt
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import WriteOptions


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--influx", required=True)
    p.add_argument("--bucket", required=True)
    args = p.parse_args()

    influx = InfluxDBClient(url=args.influx, token="bench", org="bench")
    write_api = influx.write_api(write_options=WriteOptions(batch_size=5000, flush_interval=1000))
    done = threading.Event()
    received = 0
    started = time.monotonic()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        parts = msg.topic.split("/")
        data = json.loads(msg.payload)
        point = Point(parts[2]).tag("community", parts[1]).tag("device", parts[3])
        for key, value in data.items():
            if key not in ("ts", "seq"):
                point = point.field(key, float(value))
        point = point.time(data["ts"], WritePrecision.MS)
        write_api.write(bucket=args.bucket, record=point)
        received += 1
        if received >= args.messages:
            done.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id, clean_session=False
    )
    client.on_message = on_message
    client.connect("127.0.0.1", args.port)
    client.subscribe("community/#", qos=1)
    client.loop_start()
    done.wait(600)
    write_api.close()
    seconds = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    influx.close()
    print(json.dumps({"received": received, "seconds": seconds}))


if __name__ == "__main__":
    main()
