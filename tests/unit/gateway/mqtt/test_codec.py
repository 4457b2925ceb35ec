"""The sans-IO MQTT 5 codec against byte vectors written by hand from the MQTT 5.0 spec.

Broker-to-client packets are built by the small encoders below and client-to-broker packets
are read back by the small decoder below: both are independent of the code under test.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mqtt.codec import (
    Connack,
    Disconnect,
    Packet,
    Parser,
    Pingresp,
    Puback,
    Received,
    Suback,
    Unsuback,
    Will,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_pubacks,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
)
from gateway.mqtt.errors import ProtocolError


def vbi(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return len(raw).to_bytes(2, "big") + raw


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + vbi(len(body)) + body


def props(*items: bytes) -> bytes:
    body = b"".join(items)
    return vbi(len(body)) + body


def srv_publish(
    topic: str | bytes,
    payload: bytes,
    qos: int = 0,
    packet_id: int = 0,
    retain: bool = False,
    dup: bool = False,
    properties: bytes = b"\x00",
) -> bytes:
    first = 0x30 | (qos << 1) | int(retain) | (8 if dup else 0)
    pid = packet_id.to_bytes(2, "big") if qos else b""
    return frame(first, s(topic) + pid + properties + payload)


def srv_connack(present: bool = False, reason: int = 0, properties: bytes = b"\x00") -> bytes:
    return frame(0x20, bytes([int(present), reason]) + properties)


def srv_suback(packet_id: int, codes: bytes, first: int = 0x90) -> bytes:
    return frame(first, packet_id.to_bytes(2, "big") + b"\x00" + codes)


class Reader:
    """Reads back what the client encoded, field by field."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        self.pos += n
        assert self.pos <= len(self.data)
        return self.data[self.pos - n : self.pos]

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vbi(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    def field(self) -> bytes:
        return self.take(self.u16())

    def props(self) -> dict[int, int]:
        end = self.vbi() + self.pos
        out = {}
        while self.pos < end:
            ident = self.byte()
            size = {0x11: 4, 0x21: 2, 0x27: 4, 0x02: 4, 0x18: 4}[ident]
            out[ident] = int.from_bytes(self.take(size), "big")
        return out

    def done(self) -> bool:
        return self.pos == len(self.data)


def read_frame(data: bytes) -> tuple[int, Reader]:
    r = Reader(data)
    first, length = r.byte(), r.vbi()
    assert len(data) - r.pos == length, "remaining length does not match"
    return first, r


def test_fixed_vectors() -> None:
    assert encode_puback(1) == bytes.fromhex("40020001")
    assert encode_puback(0x1234, 0x10) == bytes.fromhex("4004 1234 10 00")
    assert encode_pingreq() == bytes.fromhex("c000")
    assert encode_disconnect() == bytes.fromhex("e000")
    assert encode_disconnect(0x04) == bytes.fromhex("e00104")
    assert encode_disconnect(0, session_expiry=0) == bytes.fromhex("e00700051100000000")
    assert encode_pubacks([1, 2, 0xFFFF]) == bytes.fromhex("40020001 40020002 4002ffff")
    assert encode_pubacks([]) == b""


def test_connect_bytes() -> None:
    packet = encode_connect("gw", keepalive=30, session_expiry=604800, receive_maximum=65535)
    assert packet == bytes.fromhex("1017 00044d515454 05 00 001e 08 1100093a80 21ffff 00026777")


def test_connect_all_fields() -> None:
    packet = encode_connect(
        "gateway-1",
        clean_start=True,
        keepalive=60,
        username="u",
        password=b"p\x00w",
        session_expiry=7,
        receive_maximum=1000,
        maximum_packet_size=1 << 20,
        will=Will("gw/status", b"offline", qos=1, retain=True),
    )
    first, r = read_frame(packet)
    assert first == 0x10
    assert r.field() == b"MQTT" and r.byte() == 5
    flags = r.byte()
    assert flags == 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02
    assert r.u16() == 60
    assert r.props() == {0x11: 7, 0x21: 1000, 0x27: 1 << 20}
    assert r.field() == b"gateway-1"
    assert r.props() == {}
    assert r.field() == b"gw/status" and r.field() == b"offline"
    assert r.field() == b"u" and r.field() == b"p\x00w"
    assert r.done()


def test_subscribe_bytes() -> None:
    assert encode_subscribe(10, [("a/#", 1)], retain_handling=1) == bytes.fromhex(
        "8209 000a 00 0003612f23 11"
    )
    first, r = read_frame(encode_subscribe(7, [("x/+/y", 0), ("z", 1)]))
    assert first == 0x82 and r.u16() == 7 and r.props() == {}
    assert (r.field(), r.byte(), r.field(), r.byte()) == (b"x/+/y", 0, b"z", 1)
    assert r.done()


def test_unsubscribe_bytes() -> None:
    assert encode_unsubscribe(3, ["a", "bc"]) == bytes.fromhex("a20a 0003 00 000161 00026263")


def test_publish_bytes() -> None:
    assert encode_publish("a/b", b"hi") == bytes.fromhex("3008 0003612f62 00 6869")
    assert encode_publish("t", b"", qos=1, packet_id=2, retain=True, dup=True) == bytes.fromhex(
        "3b06 000174 0002 00"
    )
    assert encode_publish("t", b"x", message_expiry=60) == bytes.fromhex(
        "300a 000174 05020000003c 78"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (16383, "ff7f"),
        (16384, "808001"),
        (2097151, "ffff7f"),
        (2097152, "80808001"),
        (268435455, "ffffff7f"),
    ],
)
def test_remaining_length_encoding(value: int, encoded: str) -> None:
    assert encode_varint(value) == bytes.fromhex(encoded)
    assert vbi(value) == bytes.fromhex(encoded)


def test_remaining_length_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_varint(268435456)
    with pytest.raises(ValueError):
        encode_varint(-1)


@pytest.mark.parametrize("remaining", [127, 128, 16383, 16384, 2097151, 2097152])
def test_parser_at_remaining_length_boundaries(remaining: int) -> None:
    topic = "t/x"
    payload = bytes(range(256)) * (remaining // 256 + 1)
    payload = payload[: remaining - (2 + len(topic) + 2 + 1)]
    packet = srv_publish(topic, payload, qos=1, packet_id=9)
    assert packet[1:].startswith(vbi(remaining))
    expected = [Received(topic, payload, 1, False, 9, 5)]
    assert Parser().feed(packet, 5) == expected
    for cut in range(1, 7):  # split inside and around the remaining length
        parser = Parser()
        assert parser.feed(packet[:cut], 5) == []
        assert parser.feed(packet[cut:], 5) == expected
    parser = Parser()
    got: list[Packet] = []
    for i in range(0, len(packet), 65536):
        got += parser.feed(packet[i : i + 65536], 5)
    assert got == expected


@pytest.mark.parametrize(
    "expected",
    [
        Received("a", b"", 0, False, 0, 42),
        Received("c/1/meter/m1/telemetry", b'{"v":1}', 1, False, 1, 42),
        Received("r", b"\x00" * 300, 1, True, 65535, 42, True),
        Received("\u95e8/\u7981", b"x", 0, True, 0, 42, False, 3600),
    ],
)
def test_publish_round_trip(expected: Received) -> None:
    topic, payload, qos, retain, packet_id, _, dup, expiry = expected
    encoded = encode_publish(
        topic, payload, qos=qos, retain=retain, dup=dup, packet_id=packet_id, message_expiry=expiry
    )
    [got] = Parser().feed(encoded, 42)
    assert got == expected
    assert isinstance(got, Received) and type(got.payload) is bytes


def test_puback_and_disconnect_round_trip() -> None:
    assert Parser().feed(encode_puback(77) + encode_puback(78, 0x10)) == [
        Puback(77, 0),
        Puback(78, 0x10),
    ]
    acks = Parser().feed(encode_pubacks(list(range(1, 1001))))
    assert acks == [Puback(i, 0) for i in range(1, 1001)]
    assert Parser().feed(encode_disconnect(0x8E) + encode_disconnect()) == [
        Disconnect(0x8E),
        Disconnect(0),
    ]
    assert Parser().feed(encode_disconnect(0x04, session_expiry=0)) == [Disconnect(0x04)]


@settings(max_examples=200, deadline=None)
@given(
    topic=st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00+#"),
        min_size=1,
        max_size=40,
    ),
    payload=st.binary(max_size=600),
    qos=st.sampled_from([0, 1]),
    retain=st.booleans(),
    packet_id=st.integers(1, 65535),
    expiry=st.none() | st.integers(0, 2**32 - 1),
)
def test_publish_round_trip_any(
    topic: str, payload: bytes, qos: int, retain: bool, packet_id: int, expiry: int | None
) -> None:
    data = encode_publish(
        topic, payload, qos=qos, retain=retain, packet_id=packet_id, message_expiry=expiry
    )
    assert Parser().feed(data) == [
        Received(topic, payload, qos, retain, packet_id if qos else 0, 0, False, expiry)
    ]


def mixed_stream() -> tuple[bytes, list[Packet]]:
    connack_props = props(
        b"\x21\x00\x14",  # receive maximum 20
        b"\x22\x00\x0a",  # topic alias maximum 10
        b"\x27\x00\x10\x00\x00",  # maximum packet size
        b"\x12" + s("auto-1"),  # assigned client identifier
        b"\x1f" + s("welcome"),  # reason string
        b"\x13\x00\x3c",  # server keep alive 60
        b"\x24\x01",  # maximum QoS 1
        b"\x26" + s("k") + s("v"),  # user property
    )
    publish_props = props(
        b"\x02\x00\x00\x00\x78",  # message expiry 120
        b"\x01\x01",  # payload format indicator
        b"\x03" + s("application/json"),
        b"\x08" + s("reply/here"),
        b"\x09" + s(b"\x01\x02"),
        b"\x26" + s("a") + s("1"),
        b"\x26" + s("a") + s("2"),
        b"\x0b\x81\x01",  # subscription identifier 129
        b"\x0b\x02",
    )
    parts: list[tuple[bytes, Packet]] = [
        (
            srv_connack(True, 0, connack_props),
            Connack(True, 0, 20, 10, 1 << 20, 1, "auto-1", 60, None, "welcome"),
        ),
        (srv_suback(1, b"\x01\x00\x80"), Suback(1, (1, 0, 0x80))),
        (srv_publish("a/b", b"one", 1, 5), Received("a/b", b"one", 1, False, 5, 7)),
        (srv_publish("a/c", b"", 0, retain=True), Received("a/c", b"", 0, True, 0, 7)),
        (
            srv_publish("a/d", b"two", 1, 6, dup=True, properties=publish_props),
            Received("a/d", b"two", 1, False, 6, 7, True, 120),
        ),
        (bytes.fromhex("40020009"), Puback(9, 0)),
        (bytes.fromhex("4003000a10"), Puback(10, 0x10)),
        (frame(0x40, b"\x00\x0b\x80" + props(b"\x1f" + s("no"))), Puback(11, 0x80)),
        (bytes.fromhex("d000"), Pingresp()),
        (frame(0xB0, b"\x00\x02\x00\x00\x11"), Unsuback(2, (0, 0x11))),
        (
            srv_publish("z", b"\xff" * 200, 1, 65535),
            Received("z", b"\xff" * 200, 1, False, 65535, 7),
        ),
        (frame(0xE0, b"\x8b" + props(b"\x1f" + s("bye"))), Disconnect(0x8B, "bye")),
    ]
    return b"".join(p for p, _ in parts), [d for _, d in parts]


def test_parser_decodes_every_broker_packet() -> None:
    data, expected = mixed_stream()
    parser = Parser()
    assert parser.feed(data, 7) == expected
    assert parser.controls == 8
    assert parser.qos1 == 3


def test_connack_defaults() -> None:
    [connack] = Parser().feed(srv_connack(False, 0))
    assert connack == Connack(False, 0)
    assert connack.receive_maximum == 65535 and connack.topic_alias_maximum == 0
    assert connack.maximum_qos == 2
    [refused] = Parser().feed(srv_connack(False, 0x86))
    assert isinstance(refused, Connack) and refused.reason_code == 0x86


def test_parser_one_byte_at_a_time() -> None:
    data, expected = mixed_stream()
    parser = Parser()
    got: list[Packet] = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1], 7)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_parser_any_split(cuts: list[int]) -> None:
    data, expected = mixed_stream()
    data = data * 3
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser = Parser()
    got: list[Packet] = []
    last = 0
    for point in [*points, len(data)]:
        got += parser.feed(data[last:point], 7)
        last = point
    assert got == expected * 3


def test_parser_random_chunks_of_many_publishes() -> None:
    rng = random.Random(1)
    packets = [
        srv_publish(f"c/1/m/{i}/t", b"x" * rng.randrange(0, 400), 1, i % 65535 + 1)
        for i in range(3000)
    ]
    data = b"".join(packets)
    parser = Parser()
    got: list[Packet] = []
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 5000)
        got += parser.feed(memoryview(data)[pos : pos + step].tobytes(), 1)
        pos += step
    assert [p.packet_id for p in got if isinstance(p, Received)] == [
        i % 65535 + 1 for i in range(3000)
    ]
    assert Parser().feed(bytearray(data[: len(packets[0])]), 1) == got[:1]


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("30ffffffff01"),  # remaining length of 5 bytes
        bytes.fromhex("308000"),  # remaining length not minimally encoded
        bytes.fromhex("d08000"),
        srv_publish("t", b"x", qos=3, packet_id=1),  # QoS 3
        srv_publish("t", b"x", qos=2, packet_id=1),  # QoS 2 was never asked for
        srv_publish("t", b"x", qos=1, packet_id=0),  # packet id 0
        srv_publish("t", b"x", qos=0, dup=True),  # DUP on QoS 0
        srv_publish(b"\xff\xfe", b"x"),  # topic is not UTF-8
        srv_publish(b"\xed\xa0\x80", b"x"),  # UTF-16 surrogate in UTF-8
        srv_publish("", b"x"),  # empty topic without alias
        srv_publish("t", b"x", properties=props(b"\x23\x00\x01")),  # topic alias
        srv_publish("t", b"", properties=props(b"\x7f\x00")),  # unknown property
        srv_publish("t", b"", properties=props(b"\x02\x00\x00\x00\x01" * 2)),  # repeated
        srv_publish("t", b"", properties=b"\x05\x02\x00"),  # properties overrun the packet
        srv_publish("t", b"", properties=props(b"\x03\x00\x09ab")),  # string overruns
        frame(0x30, b"\x00\x09ab"),  # topic length beyond the packet
        frame(0x32, b"\x00\x01t\x00"),  # packet id cut short
        frame(0x30, b"\x00"),  # a single byte of PUBLISH
        frame(0x30, b""),  # empty PUBLISH
        frame(0x20, b"\x02\x00\x00"),  # CONNACK reserved flag
        frame(0x20, b"\x00"),  # CONNACK too short
        frame(0x20, b"\x00\x00\x00\xff"),  # trailing bytes after CONNACK properties
        frame(0x40, b"\x00"),  # PUBACK too short
        bytes.fromhex("d00100"),  # PINGRESP with a body
        srv_suback(1, b""),  # SUBACK without reason codes
        srv_suback(1, b"\x00", first=0x91),  # reserved flags
        bytes.fromhex("1000"),  # CONNECT from the broker
        bytes.fromhex("c000"),  # PINGREQ from the broker
        bytes.fromhex("62020001"),  # PUBREL (QoS 2 flow)
        bytes.fromhex("f000"),  # AUTH
        bytes.fromhex("0000"),  # reserved type 0
    ],
)
def test_malformed_input_raises(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Parser().feed(data)


def test_connack_without_properties_is_accepted() -> None:
    assert Parser().feed(srv_connack(True, 0, b"")) == [Connack(True, 0)]


def test_maximum_packet_size() -> None:
    packet = srv_publish("t", b"x" * 100)
    with pytest.raises(ProtocolError):
        Parser(max_packet_size=50).feed(packet[:3])
    assert len(Parser(max_packet_size=len(packet)).feed(packet)) == 1


def test_counts_reset_on_each_feed() -> None:
    parser = Parser()
    parser.feed(srv_connack() + srv_publish("t", b"", 1, 1))
    assert (parser.controls, parser.qos1) == (1, 1)
    parser.feed(srv_publish("t", b"", 0))
    assert (parser.controls, parser.qos1) == (0, 0)
    parser.feed(srv_publish("t", b"abc", 1, 2)[:4])
    assert (parser.controls, parser.qos1) == (0, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_publish("t", b"", qos=2, packet_id=1),
        lambda: encode_publish("a/+", b""),
        lambda: encode_publish("a/#", b""),
        lambda: encode_publish("", b""),
        lambda: encode_publish("t", b"", qos=1, packet_id=0),
        lambda: encode_publish("t", b"", qos=1, packet_id=65536),
        lambda: encode_publish("t" * 65536, b""),
        lambda: encode_publish("t", b"", message_expiry=2**32),
        lambda: encode_puback(0),
        lambda: encode_pubacks([1, 0]),
        lambda: encode_pubacks([65536]),
        lambda: encode_subscribe(1, []),
        lambda: encode_subscribe(1, [("a", 3)]),
        lambda: encode_subscribe(1, [("", 0)]),
        lambda: encode_subscribe(1, [("a", 0)], retain_handling=3),
        lambda: encode_unsubscribe(1, []),
        lambda: encode_connect("x", keepalive=65536),
        lambda: encode_connect("x", receive_maximum=0),
        lambda: encode_connect("x", session_expiry=-1),
        lambda: encode_disconnect(256),
    ],
)
def test_encoders_reject_invalid_values(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
