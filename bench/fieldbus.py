"""Field-bus throughput: meter polls per second on one bus at 9600 baud, against the wire's own
limit for the same frames.

The meters are the simulated ones on a real pty, pacing every exchange like the wire: request and
reply take ``bytes x bits_per_char / baud`` (10 bits at 8N1, 11 at 8E1/8N2) plus a 2 ms answer
delay. The bridge polls back to back (``poll_every_s`` tiny). The wire limit counts only the bits
of the same request and reply frames; the ideal adds the protocol's 3.5-character gap after each
exchange (what a perfect master could do).

    .venv/bin/python bench/fieldbus.py [--seconds 10] [--baud 9600] [--model sdm630 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.serial import dlt645
from devices.serial.registers import METER_MAPS
from firmware_stubs.serial.room import start_room
from gateway.fieldbus.bridge import Fieldbus
from gateway.fieldbus.settings import SerialBus

ANSWER_DELAY_S = 0.002


def frame_bytes(model: str) -> list[tuple[int, int]]:
    """(request, reply) sizes of one poll of ``model``."""
    if model == "dlt645":
        out = []
        for di in dlt645.METER_DIS:
            size = dlt645.DATA_IDS[di].size
            out.append((len(dlt645.read_request("000000000001", di)), 4 + 12 + 4 + size))
        return out
    return [(8, 5 + 2 * b.count) for b in METER_MAPS[model].blocks()]


async def run(model: str, meters: int, seconds: float, baud: int) -> dict[str, object]:
    parity = "E" if model == "dlt645" else "N"
    bits = 11 if parity == "E" else 10
    with tempfile.TemporaryDirectory() as tmp:
        room = start_room(
            tmp,
            name="bench",
            models=() if model == "dlt645" else ((model, meters),),
            dlt645=meters if model == "dlt645" else 0,
            baudrate=baud,
            poll_every_s=0.001,
        )
        try:
            cfg = dict(room.config[0])
            cfg["poll_every_s"] = 0.001
            bus = SerialBus.model_validate(cfg)
            published = 0

            async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
                nonlocal published
                published += 1

            fb = Fieldbus([bus], publish, "community")
            await fb.start()
            s = fb.schedulers[0]
            await asyncio.sleep(2.0)  # warm up: one full cycle
            ok0 = sum(d.counters.polls_ok for d in s.devices)
            t0 = time.monotonic()
            await asyncio.sleep(seconds)
            polls = sum(d.counters.polls_ok for d in s.devices) - ok0
            elapsed = time.monotonic() - t0
            errors = sum(d.counters.timeouts + d.counters.checksum_errors for d in s.devices)
            await fb.stop()
        finally:
            room.stop()
    frames = frame_bytes(model)
    wire_s = sum(req + rep for req, rep in frames) * bits / baud
    gap_s = 3.5 * bits / baud
    ideal_s = wire_s + len(frames) * (gap_s + ANSWER_DELAY_S)
    measured = polls / elapsed
    return {
        "model": model,
        "meters": meters,
        "baud": baud,
        "transactions_per_poll": len(frames),
        "bytes_per_poll": sum(req + rep for req, rep in frames),
        "polls_per_s": round(measured, 2),
        "wire_limit_polls_per_s": round(1 / wire_s, 2),
        "ideal_with_gaps_polls_per_s": round(1 / ideal_s, 2),
        "of_wire_limit": round(measured * wire_s, 3),
        "of_ideal": round(measured * ideal_s, 3),
        "errors": errors,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--meters", type=int, default=10)
    p.add_argument("--model", action="append", default=None)
    args = p.parse_args()
    for model in args.model or ["sdm630", "ddsu666", "dtsu666", "dlt645"]:
        result = asyncio.run(run(model, args.meters, args.seconds, args.baud))
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
