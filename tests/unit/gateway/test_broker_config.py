"""The generated broker configurations (broker-config, the embedded broker): accounts only,
every listener binding client ids to accounts, a packet limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.broker_config import Listener, Tls, conf_text, write_accounts
from gateway.config import Registry
from gateway.mqtt.broker import EmbeddedBroker
from gateway.mqtt.codec import PACKET_HEADROOM, max_packet_size


def listener_blocks(text: str) -> list[list[str]]:
    """The lines of each listener section (Mosquitto applies them to the listener above)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("listener "):
            blocks.append([line])
        elif blocks and line and not line.startswith("#"):
            blocks[-1].append(line)
    return blocks


def test_every_listener_binds_the_client_id_to_the_account() -> None:
    listeners = (Listener.parse("0.0.0.0:8883"), Listener.parse("1883"))
    tls = Tls(Path("/c/server.crt"), Path("/c/server.key"), Path("/c/ca.crt"))
    text = conf_text(Path("/etc/mosquitto/courtyard"), listeners, tls=tls)
    head = [line for line in text.split("\nlistener ", 1)[0].splitlines() if line[:1] != "#"]
    assert "allow_anonymous false" in head
    # a per-listener setting before the first listener would open a default one on 1883
    assert not [line for line in head if line.startswith("use_username_as_clientid")]
    blocks = listener_blocks(text)
    assert [b[0] for b in blocks] == ["listener 8883 0.0.0.0", "listener 1883"]
    for block in blocks:
        assert "use_username_as_clientid true" in block
        assert "certfile /c/server.crt" in block and "keyfile /c/server.key" in block


def test_the_default_listener_is_loopback_only() -> None:
    (block,) = listener_blocks(conf_text(Path("/x")))
    assert block == ["listener 1883 127.0.0.1", "use_username_as_clientid true"]


@pytest.mark.parametrize("text", ["", "host:", "0", "70000", "a:b", "127.0.0.1:-1"])
def test_a_bad_listener_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="listener"):
        Listener.parse(text)


def test_the_broker_refuses_packets_the_gateway_would_not_take() -> None:
    head = conf_text(Path("/x"), max_payload_bytes=1000).split("\nlistener ", 1)[0]
    # the size the gateway advertises in CONNECT for [store] max_payload_bytes = 1000
    assert f"max_packet_size {max_packet_size(1000)}" in head.splitlines()
    assert max_packet_size(1000) == 1000 + PACKET_HEADROOM


def test_the_embedded_broker_takes_only_its_accounts(tmp_path: Path) -> None:
    broker = EmbeddedBroker(
        tmp_path, port=1884, password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    text = broker.write_config().read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "listener 1884 127.0.0.1"
    for line in ("allow_anonymous false", f"password_file {tmp_path / 'passwd'}"):
        assert line in lines
    assert f"acl_file {tmp_path / 'acl'}" in lines
    assert "use_username_as_clientid true" in lines
    assert "allow_anonymous true" not in lines
    with pytest.raises(ValueError, match="both"):
        EmbeddedBroker(tmp_path, password_file=tmp_path / "passwd")


@pytest.mark.parametrize("name", ["", "a:b", 'say "hi"', "two\nlines"])
def test_a_gateway_account_that_cannot_be_written_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a broker user name"):
        write_accounts(Registry(), tmp_path, gateway_user=name)
