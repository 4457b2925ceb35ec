"""``courtyard``: serve | demo | check-config | broker-config | backup | restore | decode (see
``courtyard --help``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from gateway import decode_cli, logs, store_cli
from gateway.config import ConfigError, Registry, Settings, load_registry, load_settings
from gateway.config.settings import AdapterEntry

log = logging.getLogger("courtyard")

DEMO_SEED = "courtyard-demo"


def _setup_logging(level: str) -> None:
    logs.setup(getattr(logging, level.upper(), logging.INFO))


def _load(config: str | None) -> tuple[Settings, Registry]:
    settings = load_settings(config)
    return settings, load_registry(settings.community.file or None)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: SIGINT/SIGTERM are ours, so that a
    stop is a clean exit with status 0 (uvicorn re-raises the signal after shutting down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


OnStarted = Callable[[FastAPI, asyncio.Event], Awaitable[None]]


async def _serve(
    settings: Settings, registry: Registry, on_started: OnStarted | None = None
) -> None:
    """Run the API (and with it the gateway) until SIGINT/SIGTERM; ``on_started`` runs beside
    it once the gateway is up and gets the stop event."""
    from gateway.app import create_app

    host, port = settings.api.host_port
    app = create_app(settings, registry)
    server = _Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", access_log=False
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serve_task = asyncio.create_task(server.serve(), name="api")
    # uvicorn offers no event to await for "started"
    while not server.started and not serve_task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    try:
        if server.started:
            if on_started is not None:
                await on_started(app, stop)
            else:
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({serve_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
    finally:
        server.should_exit = True
        await serve_task
    if not server.started:
        raise SystemExit(1)  # uvicorn has logged why (a port in use, a failed start-up)


def cmd_serve(args: argparse.Namespace) -> int:
    settings, registry = _load(args.config)
    if not settings.auth.platform_keys:
        log.warning(
            "no [auth] platform_keys: every API call but /healthz and /readyz will answer 401"
        )
    if (refused := store_cli.preflight(Path(settings.store.path))) is not None:
        print(f"courtyard: {refused}", file=sys.stderr)
        return 1
    if not _run(_serve(settings, registry)):
        return 1
    return 0


def _run(coro: Coroutine[Any, Any, None]) -> bool:
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        log.error("%s", exc)
        return False
    return True


def cmd_check_config(args: argparse.Namespace) -> int:
    settings, registry = _load(args.config)
    print(
        f"ok: {len(registry.devices)} devices in {len(registry.communities)} communities; "
        f"broker {settings.mqtt.url or 'embedded'}; store {settings.store.path}; "
        f"influxdb {'on (' + settings.influxdb.api + ')' if settings.influxdb else 'off'}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from firmware_stubs.community import Community
    from firmware_stubs.serial.room import start_room
    from firmware_stubs.vendors.world import KINDS, Ecosystems
    from gateway.fieldbus.settings import parse_buses

    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    key = os.environ.get("COURTYARD_DEMO_KEY") or secrets.token_urlsafe(24)
    # a lively community: everything reports 6x faster than real firmware (meters every 10 s)
    sim: dict[str, Any] = dict(gates=2, entrances=4, spaces=40, meters=60, lockers=2, rate_scale=6)
    registry_file = data / "community.toml"
    # beside the native devices, devices of other ecosystems (Zigbee2MQTT, Tasmota, Shelly,
    # LoRaWAN servers on MQTT; a Hikvision controller and plate cameras pushing over HTTP)
    vendors = Ecosystems("127.0.0.1", 1, f"http://{args.listen}", seed=DEMO_SEED)
    registry_file.write_text(
        Community("127.0.0.1", 1, secret_seed=DEMO_SEED, **sim).registry_toml()
        + "\n"
        + vendors.registry_toml(),
        encoding="utf-8",
    )
    settings = load_settings(
        None,
        {
            **os.environ,
            "COURTYARD_STORE_PATH": str(data / "courtyard.db"),
            "COURTYARD_COMMUNITY_FILE": str(registry_file),
            "COURTYARD_API_LISTEN": args.listen,
            "COURTYARD_AUTH_PLATFORM_KEYS": f'["{key}"]',
        },
    )
    settings = settings.model_copy(
        update={
            "adapters": [
                AdapterEntry.model_validate({"kind": kind, "community": "c1"}) for kind in KINDS
            ]
        }
    )
    registry = load_registry(settings.community.file)
    # one meter room on RS-485: meters and a lock board answering on pseudo-terminals
    room = start_room(data / "serial", secret_seed=DEMO_SEED, lockers=1, cjt188=1, poll_every_s=10)
    settings = settings.model_copy(update={"serial": parse_buses(room.serial_config())})
    serial_devices = sum(len(bus.devices) + 1 for bus in settings.serial)
    print(
        f"Courtyard demo: {len(registry.devices)} simulated devices on MQTT and "
        f"{serial_devices} on RS-485 (buses included), data in {data}",
        flush=True,
    )

    async def with_community(app: FastAPI, stop: asyncio.Event) -> None:
        gw = app.state.gateway
        host, port = gw.mqtt_url.removeprefix("mqtt://").rsplit(":", 1)
        # the embedded broker takes only its accounts: each simulated device logs in as itself
        assert gw.accounts is not None
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, waited for below
            [
                sys.executable,
                "-m",
                "firmware_stubs",
                "community",
                "--host",
                host,
                "--port",
                port,
                "--secret-seed",
                DEMO_SEED,
                "--credentials",
                str(gw.accounts.credentials),
                *[f"--{k.replace('_', '-')}={v}" for k, v in sim.items()],
            ],
            stdin=subprocess.DEVNULL,
        )
        api = f"http://{args.listen}"
        ecosystems = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped below
            [
                sys.executable,
                "-m",
                "firmware_stubs",
                "vendors",
                "--host",
                host,
                "--port",
                port,
                "--api",
                api,
                "--secret-seed",
                DEMO_SEED,
                f"--rate-scale={sim['rate_scale']}",
                "--credentials",
                str(gw.accounts.credentials),
            ],
            stdin=subprocess.DEVNULL,
        )
        print(
            f"\n  console    {api}/console  (sign in with the platform key)\n"
            f"  API        {api}  (OpenAPI: {api}/docs)\n"
            f"  broker     {gw.mqtt_url}  (accounts in {gw.accounts.credentials})\n"
            f"  platform key: {key}\n\n"
            f"  try: curl -H 'Authorization: Bearer {key}' {api}/api/v1/devices\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        try:
            while not stop.is_set() and proc.poll() is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
            if proc.poll() is not None:
                log.error("the simulated community exited with %s", proc.returncode)
        finally:
            for child in (proc, ecosystems):
                if child.poll() is None:
                    child.terminate()
                    try:
                        await asyncio.to_thread(child.wait, 15)
                    except subprocess.TimeoutExpired:
                        child.kill()
            print("stopping...", flush=True)

    try:
        return 0 if _run(_serve(settings, registry, with_community)) else 1
    finally:
        room.stop()


def _ecosystems(config: str, registry: Registry) -> list[Any]:
    """The broker accounts of the gateway config's ``[[adapters]]`` entries."""
    from gateway.adapters.commander import ecosystem_accounts
    from gateway.broker_config import Ecosystem
    from gateway.service import adapter_router

    routes = adapter_router(load_settings(config)).routes
    return [
        Ecosystem(name, topics) for name, topics in ecosystem_accounts(routes, registry.devices)
    ]


def cmd_broker_config(args: argparse.Namespace) -> int:
    from gateway.broker_config import (
        DEFAULT_LISTEN,
        DEFAULT_MAX_PAYLOAD,
        Listener,
        Tls,
        write_broker_config,
    )

    registry = load_registry(args.community)
    try:
        ecosystems = _ecosystems(args.config, registry) if args.config else []
        listeners = tuple(Listener.parse(text) for text in args.listen or [DEFAULT_LISTEN])
        max_payload = (
            DEFAULT_MAX_PAYLOAD if args.max_payload_bytes is None else args.max_payload_bytes
        )
        if max_payload < 256:  # as [store] max_payload_bytes
            raise ValueError(f"--max-payload-bytes {max_payload}: at least 256")
        tls = None
        if args.certfile or args.keyfile or args.cafile:
            if not (args.certfile and args.keyfile):
                raise ValueError("TLS needs both --certfile and --keyfile")
            cafile = Path(args.cafile).resolve() if args.cafile else None
            tls = Tls(Path(args.certfile).resolve(), Path(args.keyfile).resolve(), cafile)
        written = write_broker_config(
            registry,
            Path(args.out),
            prefix=args.prefix,
            gateway_user=args.gateway_user,
            listeners=listeners,
            tls=tls,
            max_payload_bytes=max_payload,
            ecosystems=ecosystems,
        )
    except (OSError, ValueError, ConfigError) as exc:
        print(f"courtyard: {exc}", file=sys.stderr)
        return 1
    if tls is None and not all(listener.loopback for listener in listeners):
        print(
            "courtyard: warning: a listener beyond loopback without TLS: passwords and "
            "commands cross the network in clear (--certfile, --keyfile)",
            file=sys.stderr,
        )
    print(
        f"wrote passwd, acl, credentials.toml and mosquitto.conf to {written.folder}: "
        f"{written.accounts} accounts ({written.new_passwords} new passwords)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="courtyard",
        description="Courtyard smart-community IoT gateway.",
    )
    p.add_argument(
        "--log-level",
        default=os.environ.get("COURTYARD_LOG_LEVEL", "info"),
        help="debug, info, warning or error (default: info)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", "-c", help="the TOML config file (else defaults + environment)")
    s.set_defaults(func=cmd_serve)
    d = sub.add_parser("demo", help="run the gateway with a simulated community, embedded")
    d.add_argument("--data-dir", default="courtyard-demo", help="where the demo keeps its files")
    d.add_argument("--listen", default="127.0.0.1:8080", help="the API's HOST:PORT")
    d.set_defaults(func=cmd_demo)
    c = sub.add_parser("check-config", help="validate the config and the community file")
    c.add_argument("--config", "-c")
    c.set_defaults(func=cmd_check_config)
    b = sub.add_parser(
        "broker-config", help="write Mosquitto password and ACL files from the community file"
    )
    b.add_argument("--community", required=True, help="the community file (TOML)")
    b.add_argument("--out", required=True, help="folder for passwd, acl, credentials.toml")
    b.add_argument(
        "--config",
        help="the gateway config: an account per [[adapters]] ecosystem on its own topics",
    )
    b.add_argument("--prefix", default="community", help='topic prefix (default "community")')
    b.add_argument(
        "--gateway-user", default="courtyard", help='the gateway\'s account (default "courtyard")'
    )
    b.add_argument(
        "--listen",
        action="append",
        metavar="[HOST:]PORT",
        help="a listener of the broker, repeatable (default 127.0.0.1:1883)",
    )
    b.add_argument("--certfile", help="the broker's TLS certificate (turns TLS on)")
    b.add_argument("--keyfile", help="the broker's TLS private key")
    b.add_argument("--cafile", help="the CA that client certificates chain to")
    b.add_argument(
        "--max-payload-bytes",
        type=int,
        default=None,
        help="the gateway's [store] max_payload_bytes (default 65536): far bigger packets "
        "are refused by the broker",
    )
    b.set_defaults(func=cmd_broker_config)
    store_cli.add_parsers(sub)
    # every argument after "decode" is decode_cli's, options included: no prefix character
    x = sub.add_parser(
        "decode",
        help="decode one adapter message or serial frame as JSON (nothing is stored)",
        add_help=False,
        prefix_chars="\0",
    )
    x.add_argument("argv", nargs=argparse.REMAINDER)
    x.set_defaults(func=lambda args: decode_cli.run(args.argv))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"courtyard: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
