"""Drain rate of the gateway's MQTT client against ``mosquitto_sub`` on the same queue.

A private Mosquitto (free port, temp dir) holds two persistent sessions subscribed to
``bench/#`` at QoS 1. N messages are published once (so both sessions queue them); then
``mosquitto_sub -q 1 -c -i ID -C N`` drains its session and our client drains its own,
acking every batch as soon as it is delivered. Rounds alternate who drains first.

    .venv/bin/python bench/mqtt_drain.py [-n 100000] [--rounds 3] [--ack-every-ms 0]
        [--autosave 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from gateway.mqtt.broker import free_port
from gateway.mqtt.client import Batch, Message, MqttClient

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TOPIC_FILTER = "bench/#"
OURS_ID = "drain-ours"
REF_ID = "drain-ref"


def start_broker(workdir: Path, port: int, autosave: int) -> subprocess.Popen[bytes]:
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nmax_queued_messages 0\nmax_inflight_messages 0\n"
        f"set_tcp_nodelay true\nautosave_interval {autosave}\n"
        f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("mosquitto did not start")


async def publish(port: int, count: int) -> None:
    client = MqttClient(
        "127.0.0.1",
        port,
        "drain-pub",
        on_batch=lambda m, t: None,
        subscriptions=[],
        session_expiry=0,
        clean_start=True,
    )
    await client.start()
    window = 2000
    for first in range(0, count, window):
        await asyncio.gather(
            *(
                client.publish(
                    f"bench/c1/meter/m{i % 1000:04d}/telemetry",
                    b'{"ts":1700000000000,"seq":%d,"kwh":1234.56,"v":229.9,"a":3.2}' % i,
                )
                for i in range(first, min(first + window, count))
            )
        )
    await client.stop()


class Drain(NamedTuple):
    rate: float  # messages per second, wall clock
    cpu_us: float  # CPU time of the consumer process per message (user + system)


async def drain_ours(port: int, count: int, ack_every_ms: float) -> Drain:
    """Ack every batch on delivery, or (ack_every_ms > 0) all batches at once on a timer, the
    way the gateway acks after a group commit (without the commit)."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    batches: list[list[Message]] = []
    unacked: dict[Batch, list[int]] = {}
    received = 0

    def flush() -> None:
        for token, ids in unacked.items():
            client.ack(token, ids)
        unacked.clear()

    def on_batch(messages: list[Message], token: Batch) -> None:
        nonlocal received
        ids = [m.packet_id for m in messages if m.qos]
        if not ack_every_ms:
            client.ack(token, ids)
        elif unacked:
            unacked.setdefault(token, []).extend(ids)
        else:
            unacked[token] = ids
            loop.call_later(ack_every_ms / 1000, flush)
        batches.append(messages)
        received += len(messages)
        if received >= count:
            done.set()

    client = MqttClient(
        "127.0.0.1", port, OURS_ID, on_batch=on_batch, subscriptions=[(TOPIC_FILTER, 1)]
    )
    started, cpu = time.perf_counter(), time.process_time()
    await client.start()
    await asyncio.wait_for(done.wait(), 120)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    flush()
    await client.stop()
    distinct = {m.payload for batch in batches for m in batch}
    if len(distinct) != count or received != count:
        raise SystemExit(f"expected {count} distinct messages, got {len(distinct)} of {received}")
    return Drain(count / elapsed, cpu / count * 1e6)


def mosquitto_sub(port: int, *args: str) -> None:
    """The reference subscriber: MQTT 3.1.1, persistent session (-c), QoS 1, output discarded."""
    command = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-c"]
    command += ["-i", REF_ID, "-t", TOPIC_FILTER, *args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=120)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drain_ref(port: int, count: int) -> Drain:
    started, cpu = time.perf_counter(), children_cpu()
    mosquitto_sub(port, "-C", str(count))
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    return Drain(count / elapsed, cpu / count * 1e6)


async def prepare_our_session(port: int) -> None:
    client = MqttClient(
        "127.0.0.1", port, OURS_ID, on_batch=lambda m, t: None, subscriptions=[(TOPIC_FILTER, 1)]
    )
    await client.start()
    await client.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ack-every-ms",
        type=float,
        default=0,
        help="ack on a timer, like a group commit every N ms (default 0: ack every batch)",
    )
    parser.add_argument(
        "--autosave",
        type=int,
        default=1800,
        help="the broker's autosave_interval (default 1800 s, Mosquitto's own; the "
        "gateway's broker uses a few seconds, which adds pauses to both drains)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        broker = start_broker(Path(tmp), port, args.autosave)
        try:
            mosquitto_sub(port, "-E")  # subscribe, then exit: the session queues from now on
            await prepare_our_session(port)
            ours: list[Drain] = []
            ref: list[Drain] = []
            for round_no in range(args.rounds):
                await publish(port, args.n)
                if round_no % 2:
                    ours.append(await drain_ours(port, args.n, args.ack_every_ms))
                    ref.append(drain_ref(port, args.n))
                else:
                    ref.append(drain_ref(port, args.n))
                    ours.append(await drain_ours(port, args.n, args.ack_every_ms))
                print(
                    f"round {round_no + 1}: mosquitto_sub {ref[-1].rate:>9,.0f} msg/s "
                    f"({ref[-1].cpu_us:.1f} us CPU/msg)   MqttClient {ours[-1].rate:>9,.0f} msg/s "
                    f"({ours[-1].cpu_us:.1f} us CPU/msg)   ratio {ours[-1].rate / ref[-1].rate:.2f}"
                )
        finally:
            broker.terminate()
            broker.wait(10)
    rate_ours = statistics.median(d.rate for d in ours)
    rate_ref = statistics.median(d.rate for d in ref)
    cpu_ours = statistics.median(d.cpu_us for d in ours)
    cpu_ref = statistics.median(d.cpu_us for d in ref)
    print(f"median of {args.rounds} rounds, N={args.n:,} queued QoS 1 messages:")
    print(f"  mosquitto_sub  {rate_ref:>9,.0f} msg/s  {cpu_ref:5.1f} us CPU/msg")
    acking = f"acks every {args.ack_every_ms:g} ms" if args.ack_every_ms else "acks every batch"
    print(f"  MqttClient     {rate_ours:>9,.0f} msg/s  {cpu_ours:5.1f} us CPU/msg ({acking})")
    print(f"  ratio          {rate_ours / rate_ref:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
