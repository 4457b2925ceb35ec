"""``courtyard decode``: one adapter message or serial frame, decoded and printed as JSON.

For installers (CONTRACT.md 7.5): what would the gateway make of this topic and payload,
this camera's push, this meter's reply? Nothing is stored and nothing is connected to; the
adapters of :mod:`devices.adapters` do the work, exactly as the gateway runs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devices.adapters import ADAPTERS
from devices.model import Rejected

EXAMPLES = """\
examples:
  courtyard decode --adapter zigbee2mqtt --topic 'zigbee2mqtt/Front Door' \\
      --payload '{"contact":false,"battery":100,"voltage":3015}'
  courtyard decode --adapter tasmota --topic tele/pow1/SENSOR --payload-file sensor.json
  courtyard decode --adapter dlt645 \\
      --hex "fe fe fe fe 68 12 90 78 56 34 12 68 11 04 33 33 34 33 68 16"
  courtyard decode --adapter modbus --model sdm630 --request "01 04 00 00 00 06 70 08" \\
      --hex "01 04 0c 43 66 80 00 43 67 00 00 43 65 80 00 41 55"
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="courtyard decode",
        description="Decode one adapter message or serial frame; print it as JSON (nothing is "
        "stored). Exit status 1 when the adapter rejects it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--adapter", required=True, choices=sorted(ADAPTERS), metavar="NAME")
    p.add_argument(
        "--topic",
        default="",
        help="the MQTT topic (HTTP adapters: the Content-Type, default application/json)",
    )
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--payload", metavar="TEXT", help="the payload as text")
    body.add_argument("--payload-file", metavar="PATH", help="the payload's file (- for stdin)")
    body.add_argument("--hex", metavar="HEX", help='the payload or frame in hex: "01 04 00 00"')
    p.add_argument(
        "--model",
        help="a Modbus register-map model (e.g. sdm630), or a LoRaWAN codec (e.g. nwave-nps405)",
    )
    p.add_argument("--request", metavar="HEX", help="the Modbus request that the reply answers")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an adapter option as in the config's [[adapters]] entry, e.g. base_topic=z2m",
    )
    return p


def _payload(args: argparse.Namespace) -> bytes | None:
    """The payload's bytes, or None for hex that does not parse."""
    if args.payload is not None:
        return str(args.payload).encode("utf-8")
    if args.payload_file is not None:
        if args.payload_file == "-":
            return sys.stdin.buffer.read()
        return Path(args.payload_file).read_bytes()
    text = str(args.hex).replace("0x", "").replace(",", " ").replace(":", " ")
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _print(out: dict[str, Any]) -> None:
    print(json.dumps(out, ensure_ascii=False))


def run(argv: list[str]) -> int:
    """Decode one message as ``argv`` says; print its JSON; 0, or 1 when rejected."""
    parser = build_parser()
    args = parser.parse_args(argv)
    adapter = ADAPTERS[args.adapter]
    options: dict[str, str] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--option {item!r}: expected KEY=VALUE")
        options[key] = value
    if args.model:
        options["model"] = args.model
    if args.request:
        options["request"] = args.request
    try:
        payload = _payload(args)
    except OSError as exc:
        parser.error(f"--payload-file: {exc.strerror or exc}")
    if payload is None:
        _print({"adapter": adapter.name, "rejected": "bad_hex", "detail": "not hex digits"})
        return 1
    topic = args.topic or ("application/json" if adapter.transport == "http" else "")
    try:
        adapted = adapter.decode(topic, payload, options)
    except Rejected as exc:
        _print({"adapter": adapter.name, "rejected": exc.reason, "detail": exc.detail})
        return 1
    _print(adapted.as_json())
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
