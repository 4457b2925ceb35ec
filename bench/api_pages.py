"""Per-request cost of the API's largest pages: a 10,000-point readings page and a 10,000-event
page, served in process by the real routes over a store of that many rows.

    PYTHONPATH=. .venv/bin/python -m bench.api_pages [--points 10000] [--rounds 15]

Prints the median and range of the time per request (rounds of 5 requests) for each page.
Run it against two checkouts alternately to compare them (PYTHONPATH picks the checkout).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.model import Decoded
from gateway.app import create_app
from gateway.config import AuthSettings, Registry, Settings, StoreSettings
from gateway.service import Gateway
from gateway.store.journal import Accepted

KEY = "bench-platform-key-0123456789"
T0 = 1_763_700_000_000


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    warnings.simplefilter("ignore")  # the test client's notice about httpx
    from starlette.testclient import TestClient

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            store=StoreSettings(path=str(Path(tmp) / "c.db")),
            auth=AuthSettings(platform_keys=[KEY]),  # type: ignore[list-item]
        )
        gw = Gateway(settings, Registry())
        gw.store.open()
        gw.store.register([("m-1", "c1", "meter", "b1")])
        dev = gw.store.devices["m-1"]
        n = args.points
        gw.store.write(
            [
                Accepted(
                    dev,
                    Decoded("meter", "m-1", "telemetry", T0 + i, seq=i, fields={"power_w": i / 7}),
                    T0,
                )
                for i in range(n)
            ]
            + [
                Accepted(
                    dev,
                    Decoded("meter", "m-1", "event", T0 + i, event="tamper", attrs={"reason": "x"}),
                    T0,
                )
                for i in range(n)
            ],
            [],
        )
        app = create_app(settings, Registry(), gw)
        app.state.gateway = gw  # no lifespan: the store is all these routes need
        client = TestClient(app, headers={"Authorization": f"Bearer {KEY}"})
        pages = {
            "readings": f"/api/v1/devices/m-1/readings?field=power_w&since={T0}"
            f"&until={T0 + n}&limit={n}",
            "events": f"/api/v1/events?since={T0}&until={T0 + n}&limit={n}",
        }
        for name, url in pages.items():
            r = client.get(url)
            assert r.status_code == 200, r.text
            assert len(r.json()["points" if name == "readings" else "events"]) == n, name
        times: dict[str, list[float]] = {name: [] for name in pages}
        for _ in range(args.rounds):
            for name, url in pages.items():
                t = time.perf_counter()
                for _ in range(5):
                    client.get(url)
                times[name].append((time.perf_counter() - t) / 5 * 1000)
        for name, ms in times.items():
            print(
                f"{name} page of {n:,}: median {statistics.median(ms):.1f} ms per request,"
                f" range {min(ms):.1f}-{max(ms):.1f} ({args.rounds} rounds of 5)"
            )
        gw.store.close()
        gw.queries.close()


if __name__ == "__main__":
    main()
