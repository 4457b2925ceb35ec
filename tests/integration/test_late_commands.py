"""A command that waits in a stalled door's socket past the 504 (issue 13, H1).

A real Mosquitto, the gateway process and door stub processes (``python -m firmware_stubs
door``). Each door process is stopped (SIGSTOP) before the unlock, so the command waits in its
socket; the gateway answers 504; the process is resumed only after that answer, reads the
command and decides by its own clock. A door of command rule 2 refuses it (``expired``) and the
audit keeps ``timeout``; a door whose firmware predates the rule opens, and the gateway turns
the audit row into ``late_ok``, records a security event and raises ``command_late_ok``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.community import community_file, dev
from tests.support.servers import REPO, GatewayProcess, Mosquitto
from tests.support.wait import wait_for
from tests.support.wire import Recorder

SECRETS = {"door-rule2": "a1" * 32, "door-rule1": "b2" * 32}
REGISTRY = community_file(
    devices=[
        dev("door-rule2", secret=SECRETS["door-rule2"], command_rule=2),
        dev("door-rule1", secret=SECRETS["door-rule1"]),
    ]
)
COMMANDS = """
[commands]
timeout_s = 2
validity_s = 2
"""


def start_door(port: int, door: str, rule: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_stubs",
            "door",
            "--port",
            str(port),
            "--id",
            door,
            "--secret",
            SECRETS[door],
            "--command-rule",
            str(rule),
            "--quiet",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def doors(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProcess]
) -> Iterator[tuple[GatewayProcess, Recorder, dict[str, subprocess.Popen[bytes]]]]:
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY, extra=COMMANDS)
    gw.start()
    wire = Recorder(mosquitto.port, client_id="test-wire")
    procs = {
        "door-rule2": start_door(mosquitto.port, "door-rule2", 2),
        "door-rule1": start_door(mosquitto.port, "door-rule1", 1),
    }
    try:
        for name in procs:
            wait_for(
                lambda n=name: gw.get(f"/api/v1/devices/{n}").json()["online"] is True,
                15,
                f"{name} online",
            )
        yield gw, wire, procs
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGCONT)  # a stopped process would not hear SIGTERM
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wire.close()


def test_a_stalled_door_never_opens_after_the_504_and_old_firmware_is_audited_late_ok(
    doors: tuple[GatewayProcess, Recorder, dict[str, subprocess.Popen[bytes]]],
) -> None:
    gw, wire, procs = doors
    for proc in procs.values():
        proc.send_signal(signal.SIGSTOP)  # the command will wait in the door's socket

    def unlock(door: str) -> httpx.Response:
        return httpx.post(
            f"{gw.api}/api/v1/doors/{door}/unlock",
            headers={"Authorization": f"Bearer {gw.key}"},
            json={"seconds": 1},
            timeout=15,
        )

    try:
        with ThreadPoolExecutor(2) as pool:
            answers = dict(zip(procs, pool.map(unlock, procs), strict=True))
        answered_ms = time.time_ns() // 1_000_000
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGCONT)  # resumed only after both answers

    sent = {door: wire.on(door, "cmd") for door in procs}
    bodies = {}
    for door, r in answers.items():
        assert r.status_code == 504, r.text
        body = bodies[door] = r.json()
        (cmd,) = sent[door]
        assert cmd["id"] == body["command_id"] and cmd["rule"] == 2
        assert body["expires_at"] == cmd["expires_at"] <= answered_ms  # a 504 comes after it
        assert "late_ok" in body["late_execution"]
    # what each door may still do: rule 2 only while its clock runs behind the gateway's
    assert bodies["door-rule2"]["may_execute_until"] == bodies["door-rule2"]["expires_at"] + 30_000
    assert bodies["door-rule1"]["may_execute_until"] == bodies["door-rule1"]["expires_at"] + 60_000

    def acks(door: str) -> list[dict[str, Any]]:
        return [a for a in wire.on(door, "ack") if a.get("id") == bodies[door]["command_id"]]

    wait_for(lambda: acks("door-rule2") and acks("door-rule1"), 15, "both doors answer")
    # rule 2: the door read the command after expires_at and refused it; it did not open
    assert [(a["ok"], a.get("error")) for a in acks("door-rule2")] == [(False, "expired")]
    time.sleep(0.5)  # an opening would follow its ack at once
    assert [e for e in wire.on("door-rule2", "event") if e["event"] == "door_opened"] == []

    def audit(door: str, **params: Any) -> list[dict[str, Any]]:
        r = gw.get("/api/v1/audit", device=door, **params)
        assert r.status_code == 200, r.text
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries

    def refusal_noted() -> bool:
        rows = audit("door-rule2")
        return len(rows) == 1 and "refused it later (expired" in rows[0]["reason"]

    wait_for(refusal_noted, 10, "the late refusal on the audit row")
    (row,) = audit("door-rule2")
    assert row["outcome"] == "timeout" and row["command_id"] == bodies["door-rule2"]["command_id"]

    # rule 1 firmware: the same stall opens the door after the 504 ...
    assert [a["ok"] for a in acks("door-rule1")] == [True]
    wait_for(
        lambda: [e for e in wire.on("door-rule1", "event") if e["event"] == "door_opened"],
        10,
        "door-rule1 opened late",
    )
    # ... and the audit says so, with a security event and an alert
    late = wait_for(lambda: audit("door-rule1", outcome="late_ok"), 10, "late_ok row")
    (row,) = late  # type: ignore[misc]
    assert row["command_id"] == bodies["door-rule1"]["command_id"]
    assert "executed it after all" in row["reason"]
    (security,) = audit("door-rule1", outcome="security")
    assert (security["reason"], security["command_id"]) == ("late_ok", row["command_id"])

    def late_alerts() -> list[dict[str, Any]]:
        items = gw.get("/api/v1/alerts", status="active").json()["alerts"]
        return [a for a in items if a["rule"] == "command_late_ok"]

    (alert,) = wait_for(late_alerts, 10, "command_late_ok alert")  # type: ignore[misc]
    assert alert["device"] == "door-rule1" and alert["severity"] == "critical"
    assert alert["details"]["command_id"] == row["command_id"]
    assert 'courtyard_security_events_total{reason="late_ok"} 1' in gw.get("/metrics").text
