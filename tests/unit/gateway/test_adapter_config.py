"""Adapter bindings in the community file and ``[[adapters]]`` in the gateway config
(CONTRACT.md 7.1): what is accepted, and what is refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_registry, load_settings

TOKEN = "9f0c3b8e6d2a41f7b5c8e0d1a2b3c4d5"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def device(**keys: object) -> str:
    base = {"id": "gate-1", "community": "c1", "class": "access", **keys}
    lines = []
    for k, v in base.items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    return "[[devices]]\n" + "\n".join(lines) + "\n"


def test_a_bound_device_keeps_its_binding_and_hides_its_secrets(tmp_path: Path) -> None:
    text = device(
        adapter="hikvision",
        source="bc:5e:33:62:2a:5c",
        ingest_token=TOKEN,
        commands=True,
        isapi_url="http://10.0.0.5/",
        username="admin",
        password="door-pass",
        door=1,
    )
    d = load_registry(write(tmp_path, "c.toml", text)).devices[0]
    assert (d.adapter, d.source, d.door, d.isapi_url) == (
        "hikvision",
        "bc:5e:33:62:2a:5c",
        1,
        "http://10.0.0.5",
    )
    assert TOKEN not in repr(d) and "door-pass" not in repr(d)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"adapter": "zigbee", "source": "x"}, "adapter 'zigbee' is unknown"),
        ({"adapter": "hikvision", "source": "m"}, "it needs ingest_token"),
        ({"adapter": "hikvision", "ingest_token": "abc"}, "32 or more digits"),
        ({"source": "x"}, "need an adapter"),
        (
            {"adapter": "hikvision", "ingest_token": TOKEN, "commands": True},
            "need isapi_url, username, password, door",
        ),
    ],
)
def test_bad_bindings_are_refused_naming_the_key(
    tmp_path: Path, keys: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_registry(write(tmp_path, "c.toml", device(**keys)))
    assert expected in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_source_and_a_token_bind_one_device_each(tmp_path: Path) -> None:
    one = device(adapter="vzenith", source="Cam-1", ingest_token=TOKEN)
    two = one.replace("gate-1", "gate-2").replace(TOKEN, "ab" * 16)
    with pytest.raises(ConfigError, match="already bound to gate-1"):
        load_registry(write(tmp_path, "c.toml", one + two.replace("Cam-1", "cam-1")))
    with pytest.raises(ConfigError, match="ingest_token is already gate-1's"):
        load_registry(
            write(tmp_path, "c.toml", one + one.replace("gate-1", "gate-2").replace("Cam", "X"))
        )


def test_adapter_entries_carry_their_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "g.toml",
        '[[adapters]]\nkind = "vzenith"\ncommunity = "c1"\nrole = "exit"\nlane = 2\n',
    )
    (entry,) = load_settings(path, environ={}).adapters
    assert (entry.kind, entry.community, entry.options) == (
        "vzenith",
        "c1",
        {"role": "exit", "lane": "2"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('kind = "zigbee"\ncommunity = "c1"', "adapters.0.kind = 'zigbee': unknown adapter"),
        ('kind = "vzenith"\ncommunity = "C 1"', "adapters.0.community"),
        ('kind = "vzenith"\ncommunity = "c1"\nrole = ["a"]', "option role"),
    ],
)
def test_bad_adapter_entries_stop_start_up(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "g.toml", "[[adapters]]\n" + text + "\n"), environ={})
    assert expected in str(caught.value)


def test_each_ecosystem_gets_a_broker_account_on_its_own_topics(tmp_path: Path) -> None:
    from gateway.adapters.commander import ecosystem_accounts
    from gateway.broker_config import Ecosystem, write_accounts
    from gateway.config import Registry
    from gateway.service import adapter_router

    settings = load_settings(
        write(
            tmp_path,
            "g.toml",
            '[[adapters]]\nkind = "shelly"\ncommunity = "c1"\n'
            '[[adapters]]\nkind = "zigbee2mqtt"\ncommunity = "c1"\n'
            '[[adapters]]\nkind = "zigbee2mqtt"\ncommunity = "c1"\nbase_topic = "z2m-b"\n',
        ),
        environ={},
    )
    registry = Registry.model_validate(
        {
            "devices": [
                {
                    "id": "gate",
                    "community": "c1",
                    "class": "parking",
                    "adapter": "shelly",
                    "source": "shellyplus2pm-gate",
                    "commands": True,
                },
            ]
        }
    )
    accounts = ecosystem_accounts(adapter_router(settings).routes, registry.devices)
    assert [name for name, _ in accounts] == [
        "adapter-shelly-c1",
        "adapter-zigbee2mqtt-c1",
        "adapter-zigbee2mqtt-c1-2",
    ]
    assert "shellyplus2pm-gate/rpc" in accounts[0][1]
    written = write_accounts(
        registry, tmp_path / "broker", ecosystems=[Ecosystem(n, t) for n, t in accounts]
    )
    acl = written.acl.read_text()
    gateway_block = acl.split("\n\n")[0]
    assert "topic readwrite z2m-b/#" in gateway_block
    assert "topic readwrite shellyplus2pm-gate/rpc" in gateway_block
    assert "user adapter-zigbee2mqtt-c1-2\ntopic readwrite z2m-b/#\n" in acl
    assert "adapter-shelly-c1" in written.credentials.read_text()
    with pytest.raises(ValueError, match="also a device id"):
        write_accounts(registry, tmp_path / "b2", ecosystems=[Ecosystem("gate", ("x/#",))])


def test_broker_config_writes_the_ecosystem_accounts_of_a_gateway_config(tmp_path: Path) -> None:
    from gateway.cli import main

    community = write(tmp_path, "c.toml", '[[communities]]\nid = "c1"\n')
    config = write(tmp_path, "g.toml", '[[adapters]]\nkind = "tasmota"\ncommunity = "c1"\n')
    out = tmp_path / "broker"
    args = ["broker-config", "--community", str(community), "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 0
    acl = (out / "acl").read_text()
    assert "user adapter-tasmota-c1\ntopic readwrite tele/+/+\n" in acl
