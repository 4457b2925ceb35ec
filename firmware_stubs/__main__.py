"""``python -m firmware_stubs community|door|flood ...``: a simulated community, one door
controller in a process of its own, or a load generator."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from firmware_stubs import signing
from firmware_stubs.community import DEFAULT_SECRET_SEED, Community, load_credentials
from firmware_stubs.door import DoorController
from firmware_stubs.flood import ENGINES, flood
from firmware_stubs.serial import cli as serial_cli
from firmware_stubs.vendors.world import Ecosystems


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    p.add_argument("--username", default=None, help="MQTT username (optional)")
    p.add_argument("--password", default=None, help="MQTT password (optional)")
    p.add_argument("--prefix", default="community", help='topic prefix (default "community")')
    p.add_argument("--community", default="c1", help='community id (default "c1")')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_stubs", description="Simulated device firmware for Courtyard."
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("community", help="run a whole simulated community until interrupted")
    _broker_args(c)
    c.add_argument("--name", default="Riverside Gardens", help="community name in the registry")
    c.add_argument("--gates", type=_count, default=2, help="community gates (default 2)")
    c.add_argument(
        "--entrances", type=_count, default=4, help="buildings, one entrance each (default 4)"
    )
    c.add_argument("--spaces", type=_count, default=40, help="parking space sensors (default 40)")
    c.add_argument("--barriers", type=_count, default=1, help="parking barrier gates (default 1)")
    c.add_argument("--meters", type=_count, default=60, help="meters, 3 per unit (default 60)")
    c.add_argument("--lockers", type=_count, default=2, help="parcel locker banks (default 2)")
    c.add_argument(
        "--rate-scale",
        type=_positive_float,
        default=1.0,
        help="speed of everything (heartbeats, events) relative to real life (default 1.0)",
    )
    c.add_argument(
        "--credentials",
        default=None,
        help="per-device broker accounts (the credentials.toml of courtyard broker-config): "
        "each device logs in as its own id; instead of --username/--password",
    )
    c.add_argument("--registry-out", default=None, help="write the community TOML file here")
    c.add_argument(
        "--secret-seed", default=DEFAULT_SECRET_SEED, help="seed of the per-device secrets"
    )
    c.add_argument("--telemetry-qos", type=int, choices=(0, 1), default=1, help="QoS of telemetry")
    c.add_argument(
        "--duration", type=_positive_float, default=None, help="stop after this many seconds"
    )
    c.add_argument(
        "--registry-only", action="store_true", help="write --registry-out (or print) and exit"
    )

    d = sub.add_parser(
        "door", help="run one door controller until interrupted (a process of its own)"
    )
    _broker_args(d)
    d.add_argument("--id", required=True, help="device id")
    d.add_argument("--secret", required=True, help="the door's command secret (hex)")
    d.add_argument("--building", default="", help='building of an entrance ("": a gate)')
    d.add_argument(
        "--command-rule",
        type=int,
        choices=(1, 2),
        default=signing.COMMAND_RULE,
        help="command rule of the firmware: 2 executes nothing after expires_at; 1 is firmware"
        " that predates it, allowing 30 s of clock skew past it (default 2)",
    )
    d.add_argument(
        "--quiet", action="store_true", help="no residents, exits or visitors: commands only"
    )

    f = sub.add_parser("flood", help="publish meter telemetry as fast as asked, wait for acks")
    _broker_args(f)
    f.add_argument("--devices", type=int, default=1000, help="device ids m-0000... (default 1000)")
    f.add_argument(
        "--messages", type=_count, default=100_000, help="unique messages (default 100000)"
    )
    f.add_argument(
        "--duplicate-ratio",
        type=float,
        default=0.0,
        help="republish this fraction of the messages verbatim, on top (default 0)",
    )
    f.add_argument("--rate", type=float, default=0.0, help="publishes per second (0: max)")
    f.add_argument("--qos", type=int, choices=(0, 1), default=1, help="QoS (default 1)")
    f.add_argument("--start-seq", type=_count, default=0, help="first seq of every device")
    f.add_argument("--ts-base-ms", type=int, default=None, help="ts of seq start-seq (ms)")
    f.add_argument("--connections", type=int, default=1, help="MQTT connections (default 1)")
    f.add_argument("--inflight", type=int, default=1000, help="unacked messages per connection")
    f.add_argument(
        "--engine", choices=sorted(ENGINES), default="paho", help="MQTT client (default paho)"
    )
    f.add_argument("--timeout", type=_positive_float, default=60.0, help="ack wait when stalled")
    f.add_argument("--seed", type=int, default=0, help="seed of the readings and duplicates")
    f.add_argument("--quiet", action="store_true", help="no progress on stderr")
    serial_cli.add_parser(sub)  # meter-room: RS-485 buses on ptys
    v = sub.add_parser("vendors", help="run the devices of other ecosystems until interrupted")
    _broker_args(v)
    v.add_argument("--api", required=True, help="the gateway's base URL, for HTTP pushes")
    v.add_argument("--secret-seed", default=DEFAULT_SECRET_SEED, help="seed of the ingest tokens")
    v.add_argument("--rate-scale", type=_positive_float, default=1.0, help="speed of everything")
    v.add_argument(
        "--credentials",
        default=None,
        help="broker accounts (credentials.toml): each ecosystem logs in as adapter-KIND-COMMUNITY",
    )
    v.add_argument(
        "--registry-only", action="store_true", help="print the bindings (community file) and exit"
    )
    return parser


def run_vendors(args: argparse.Namespace) -> int:
    world = Ecosystems(
        args.host,
        args.port,
        args.api,
        seed=args.secret_seed,
        community=args.community,
        rate=args.rate_scale,
        credentials=load_credentials(args.credentials) if args.credentials else None,
    )
    if args.registry_only:
        print(world.registry_toml())
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    world.start()
    stop.wait()
    world.stop()
    return 0


def run_community(args: argparse.Namespace) -> int:
    community = Community(
        args.host,
        args.port,
        prefix=args.prefix,
        community=args.community,
        name=args.name,
        gates=args.gates,
        entrances=args.entrances,
        spaces=args.spaces,
        meters=args.meters,
        lockers=args.lockers,
        barriers=args.barriers,
        rate_scale=args.rate_scale,
        secret_seed=args.secret_seed,
        telemetry_qos=args.telemetry_qos,
        username=args.username,
        password=args.password,
        credentials=load_credentials(args.credentials) if args.credentials else None,
    )
    if args.registry_out:
        community.write_registry(args.registry_out)
    if args.registry_only:
        if not args.registry_out:
            sys.stdout.write(community.registry_toml())
        return 0

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    community.start()
    started = time.monotonic()
    all_up = community.wait_connected(10.0)
    up = sum(d.connected for d in community.devices.values())
    print(
        f"community {args.community}: {up}/{len(community.devices)} devices connected to "
        f"{args.host}:{args.port}" + ("" if all_up else " (the rest keep retrying)"),
        file=sys.stderr,
        flush=True,
    )
    while not stop.is_set():
        if args.duration is not None and time.monotonic() - started >= args.duration:
            break
        stop.wait(0.5)
    community.stop()
    print(f"community {args.community}: stopped", file=sys.stderr, flush=True)
    return 0


def run_door(args: argparse.Namespace) -> int:
    quiet = {"mean_access_s": 1e9, "mean_exit_s": 1e9, "mean_intercom_s": 1e9}
    door = DoorController(
        args.id,
        host=args.host,
        port=args.port,
        community=args.community,
        prefix=args.prefix,
        building=args.building,
        secret=args.secret,
        username=args.username,
        password=args.password,
        command_rule=args.command_rule,
        **(quiet if args.quiet else {}),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    door.start()
    connected = door.wait_connected(10.0)
    print(
        f"door {args.id}: {'connected to' if connected else 'still trying'}"
        f" {args.host}:{args.port} (command rule {args.command_rule})",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    door.stop()
    return 0


def run_flood(args: argparse.Namespace) -> int:
    result = flood(
        args.host,
        args.port,
        args.devices,
        args.messages,
        duplicate_ratio=args.duplicate_ratio,
        rate=args.rate,
        qos=args.qos,
        community=args.community,
        prefix=args.prefix,
        start_seq=args.start_seq,
        ts_base_ms=args.ts_base_ms,
        connections=args.connections,
        inflight=args.inflight,
        engine=args.engine,
        timeout_s=args.timeout,
        seed=args.seed,
        username=args.username,
        password=args.password,
        progress=None if args.quiet else sys.stderr,
    )
    print(json.dumps(result), flush=True)
    return 0 if result["acked"] == result["published"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "community":
            return run_community(args)
        if args.command == "meter-room":
            return serial_cli.run(args)
        if args.command == "door":
            return run_door(args)
        if args.command == "vendors":
            return run_vendors(args)
        return run_flood(args)
    except (OSError, ValueError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
