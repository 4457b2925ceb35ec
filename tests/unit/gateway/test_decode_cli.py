"""``courtyard decode``: one message of each kind, rejections, and the console script."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devices.adapters import ADAPTERS
from gateway import cli, decode_cli
from tests.unit.devices.adapters.fixtures import ALL, Fixture


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = decode_cli.run(argv)
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object, one line
    return code, json.loads(out)


def _argv(fixture: Fixture) -> list[str]:
    argv = ["--adapter", fixture.adapter, "--topic", fixture.topic]
    if ADAPTERS[fixture.adapter].transport == "serial":
        argv += ["--hex", fixture.payload.hex(" ")]
    else:
        argv += ["--payload", fixture.payload.decode()]
    for key, value in fixture.options.items():
        if key in ("model", "request"):
            argv += [f"--{key}", value]
        else:
            argv += ["--option", f"{key}={value}"]
    return argv


@pytest.mark.parametrize(
    "key",
    [
        "zigbee2mqtt.lock_action",  # telemetry and an event
        "zigbee2mqtt.availability_legacy",  # status
        "zigbee2mqtt.set",  # command
        "zigbee2mqtt.bridge_log",  # ignored
        "zigbee2mqtt.plug",  # an option (base_topic)
        "tasmota.state",
        "shelly.em",
        "lorawan.chirpstack_nps405",
        "lorawan.tts_qalcosonic",
        "dahua.access",
        "serial.dlt645_request",  # request
        "serial.cjt188_reply",
        "serial.lockboard_unlock",
        "serial.modbus_reply",  # --model and --request
    ],
)
def test_prints_what_the_adapter_decodes(capsys: pytest.CaptureFixture[str], key: str) -> None:
    fixture = ALL[key]
    code, out = _run(capsys, _argv(fixture))
    expected = ADAPTERS[fixture.adapter].decode(fixture.topic, fixture.payload, fixture.options)
    assert code == 0
    assert out == json.loads(json.dumps(expected.as_json()))
    assert out["adapter"] == fixture.adapter


def test_contract_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        capsys,
        [
            "--adapter",
            "zigbee2mqtt",
            "--topic",
            "zigbee2mqtt/0x00158e5202e6be17",
            "--payload",
            '{"contact":true,"battery":100,"voltage":3015,"linkquality":110,"action":"manual_lock"}',
        ],
    )
    assert code == 0
    assert out == {
        "adapter": "zigbee2mqtt",
        "source": "0x00158e5202e6be17",
        "class": "access",
        "messages": [
            {
                "kind": "telemetry",
                "readings": {
                    "door_open": False,
                    "battery_pct": 100,
                    "battery_v": 3.015,
                    "linkquality": 110,
                },
            },
            {"kind": "event", "event": "door_locked", "attrs": {"method": "key"}},
        ],
    }


def test_rejected_exits_1_with_reason_and_detail(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, ["--adapter", "tasmota", "--topic", "tele/x/LWT", "--payload", "gone"])
    assert code == 1
    assert out == {"adapter": "tasmota", "rejected": "bad_status", "detail": "gone"}
    code, out = _run(capsys, ["--adapter", "modbus", "--hex", "01 04 02 00 01 78 f0"])
    assert (code, out["rejected"]) == (1, "needs_request")
    code, out = _run(capsys, ["--adapter", "lockboard", "--hex", "02 0g"])
    assert (code, out["rejected"]) == (1, "bad_hex")


def test_model_picks_a_lorawan_codec(capsys: pytest.CaptureFixture[str]) -> None:
    body = ALL["lorawan.chirpstack_up"].payload.replace(b'"qg=="', b'"lQ=="')  # 0x95
    argv = ["--adapter", "chirpstack", "--topic", ALL["lorawan.chirpstack_up"].topic]
    code, out = _run(capsys, [*argv, "--payload", body.decode(), "--model", "nwave-nps405"])
    assert code == 0
    assert out["class"] == "parking"
    assert out["messages"][0]["readings"]["occupied"] is True
    assert base64.b64decode("lQ==") == b"\x95"


def test_payload_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fixture = ALL["tasmota.sensor"]
    path = tmp_path / "sensor.json"
    path.write_bytes(fixture.payload)
    code, out = _run(
        capsys, ["--adapter", "tasmota", "--topic", fixture.topic, "--payload-file", str(path)]
    )
    assert code == 0
    assert out["messages"][0]["readings"]["energy_kwh"] == 6.294


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--adapter", "nope", "--payload", "{}"],
        ["--adapter", "tasmota"],  # no payload
        ["--adapter", "tasmota", "--payload", "{}", "--hex", "00"],
        ["--adapter", "tasmota", "--payload", "{}", "--option", "full_topic"],
    ):
        with pytest.raises(SystemExit) as exit_:
            decode_cli.run(argv)
        assert exit_.value.code == 2
    capsys.readouterr()


def test_through_the_courtyard_parser(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["decode", "--adapter", "shelly", "--topic", "p/online", "--payload", "true"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["messages"] == [
        {"kind": "status", "state": "online"}
    ]


def test_installed_console_script() -> None:
    script = Path(sys.executable).parent / "courtyard"
    assert script.exists()
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            str(script),
            "decode",
            "--adapter",
            "dlt645",
            "--hex",
            ALL["serial.dlt645_reply"].payload.hex(" "),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "adapter": "dlt645",
        "source": "123456789012",
        "class": "meter",
        "messages": [{"kind": "telemetry", "readings": {"energy_kwh": 1234.56}}],
    }
    rejected = subprocess.run(
        [str(script), "decode", "--adapter", "dlt645", "--hex", "68 12"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["rejected"] == "short_frame"
