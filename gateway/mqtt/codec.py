"""A sans-IO MQTT 5.0 codec for a subscribing client: encoders for what it sends, an incremental
:class:`Parser` for what the broker sends. PUBLISH is the hot path: a whole socket read is parsed
from one ``bytes`` object, one :class:`Received` tuple (plus topic and payload) per message.
Topic aliases are never advertised, so a broker that sends one breaks the protocol."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gateway.mqtt.errors import ProtocolError

MAX_REMAINING_LENGTH = 268_435_455
PACKET_HEADROOM = 8192
"""Room for the rest of a PUBLISH around its payload: fixed header, topic (ids of 64 characters
make topics of ~220 bytes), packet id and properties (a device may send user properties)."""
PINGREQ = b"\xc0\x00"
_PROTOCOL = b"\x00\x04MQTT\x05"

# Property identifiers (MQTT 5.0, section 2.2.2.2) and the shape of their values.
_SHAPES: dict[int, int | str] = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
    **dict.fromkeys((0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F), "text"),
    **dict.fromkeys((0x09, 0x16), "binary"),
    0x0B: "varint",  # subscription identifier (may repeat)
    0x26: "pair",  # user property (may repeat)
}


def max_packet_size(max_payload_bytes: int) -> int:
    """The Maximum Packet Size for a payload limit. Any payload within the limit fits, and one a
    little over it still arrives, to be dead-lettered as too large (seen and counted); a far
    bigger one is never sent to the gateway (the broker drops it) nor, with the generated
    broker configuration, accepted from a device (the broker disconnects it)."""
    return max_payload_bytes + PACKET_HEADROOM


# --- packets the broker sends --------------------------------------------------------------


class Received(NamedTuple):
    """One PUBLISH from the broker. ``packet_id`` is 0 for QoS 0; ``dup`` marks a redelivery."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int
    received_at_ms: int
    dup: bool = False
    message_expiry: int | None = None


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason_code: int
    receive_maximum: int = 65535
    topic_alias_maximum: int = 0
    maximum_packet_size: int | None = None
    maximum_qos: int = 2
    assigned_client_id: str | None = None
    server_keep_alive: int | None = None
    session_expiry: int | None = None
    reason_string: str | None = None


@dataclass(frozen=True, slots=True)
class Puback:
    packet_id: int
    reason_code: int = 0


@dataclass(frozen=True, slots=True)
class Suback:
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsuback:
    packet_id: int
    reason_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pingresp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason_code: int = 0
    reason_string: str | None = None


Packet = Received | Connack | Puback | Suback | Unsuback | Pingresp | Disconnect


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for us if we vanish without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


# --- encoding --------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """A Variable Byte Integer (1 to 4 bytes, 7 bits each, least significant group first)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"variable byte integer out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(value: str | bytes) -> bytes:
    """A UTF-8 string or binary data field: two length bytes, then the bytes."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if len(raw) > 0xFFFF:
        raise ValueError(f"string or binary field longer than 65535 bytes ({len(raw)})")
    return len(raw).to_bytes(2, "big") + raw


def _uint(value: int, size: int, what: str, low: int = 0) -> bytes:
    if not low <= value < 1 << (8 * size):
        raise ValueError(f"{what} out of range: {value}")
    return value.to_bytes(size, "big")


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def _props(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    clean_start: bool = False,
    keepalive: int = 30,
    username: str | None = None,
    password: str | bytes | None = None,
    session_expiry: int = 0,
    receive_maximum: int = 65535,
    maximum_packet_size: int | None = None,
    will: Will | None = None,
) -> bytes:
    """CONNECT. Topic Alias Maximum is never sent, so the broker uses no aliases towards us."""
    flags = 0x02 if clean_start else 0
    props = b"\x11" + _uint(session_expiry, 4, "session expiry")
    props += b"\x21" + _uint(receive_maximum, 2, "receive maximum", 1)
    if maximum_packet_size is not None:
        props += b"\x27" + _uint(maximum_packet_size, 4, "maximum packet size", 1)
    payload = _field(client_id)
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise ValueError(f"will QoS must be 0, 1 or 2: {will.qos}")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += b"\x00" + _field(will.topic) + _field(will.payload)  # no will properties
    if username is not None:
        flags |= 0x80
        payload += _field(username)
    if password is not None:
        flags |= 0x40
        payload += _field(password)
    body = _PROTOCOL + bytes((flags,)) + _uint(keepalive, 2, "keepalive") + _props(props) + payload
    return _packet(0x10, body)


def encode_subscribe(
    packet_id: int,
    subscriptions: Sequence[tuple[str, int]],
    *,
    retain_handling: int = 0,
) -> bytes:
    """SUBSCRIBE with one options byte per filter: QoS, No Local off, Retain Handling."""
    if not subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    if retain_handling not in (0, 1, 2):
        raise ValueError(f"retain handling must be 0, 1 or 2: {retain_handling}")
    options_base = retain_handling << 4  # No Local and Retain As Published off
    payload = b""
    for topic_filter, qos in subscriptions:
        if qos not in (0, 1, 2):
            raise ValueError(f"subscription QoS must be 0, 1 or 2: {qos}")
        if not topic_filter:
            raise ValueError("empty topic filter")
        payload += _field(topic_filter) + bytes((options_base | qos,))
    return _packet(0x82, _uint(packet_id, 2, "packet id", 1) + b"\x00" + payload)


def encode_unsubscribe(packet_id: int, topic_filters: Sequence[str]) -> bytes:
    if not topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    payload = b"".join(_field(f) for f in topic_filters)
    return _packet(0xA2, _uint(packet_id, 2, "packet id", 1) + b"\x00" + payload)


def encode_publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    dup: bool = False,
    packet_id: int = 0,
    message_expiry: int | None = None,
) -> bytes:
    """PUBLISH at QoS 0 or 1 (QoS 2 is not spoken by this client)."""
    if qos not in (0, 1):
        raise ValueError(f"QoS must be 0 or 1: {qos}")
    if not topic or "+" in topic or "#" in topic:
        raise ValueError(f"invalid topic name: {topic!r}")
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup and qos else 0)
    head = _field(topic)
    if qos:
        head += _uint(packet_id, 2, "packet id", 1)
    if message_expiry is None:
        head += b"\x00"
    else:
        head += b"\x05\x02" + _uint(message_expiry, 4, "message expiry")
    return _packet(first, head + payload)


def encode_puback(packet_id: int, reason_code: int = 0) -> bytes:
    """PUBACK; reason 0 uses the short form ``40 02 hi lo``."""
    head = b"\x40\x02" if reason_code == 0 else b"\x40\x04"
    tail = b"" if reason_code == 0 else _uint(reason_code, 1, "reason code") + b"\x00"
    return head + _uint(packet_id, 2, "packet id", 1) + tail


def encode_pubacks(packet_ids: Sequence[int]) -> bytes:
    """Many reason-0 PUBACKs concatenated, for one write after a commit."""
    count = len(packet_ids)
    if not count:
        return b""
    if min(packet_ids) < 1 or max(packet_ids) > 0xFFFF:
        raise ValueError("packet ids must be in 1..65535")
    return struct.pack(f">{count}I", *[0x4002_0000 | pid for pid in packet_ids])


def encode_pingreq() -> bytes:
    return PINGREQ


def encode_disconnect(reason_code: int = 0, session_expiry: int | None = None) -> bytes:
    """DISCONNECT; without ``session_expiry`` the interval sent in CONNECT stays in force."""
    _uint(reason_code, 1, "reason code")
    if session_expiry is None:
        return b"\xe0\x00" if reason_code == 0 else bytes((0xE0, 1, reason_code))
    props = b"\x11" + _uint(session_expiry, 4, "session expiry")
    return _packet(0xE0, bytes((reason_code,)) + _props(props))


# --- decoding --------------------------------------------------------------------------------


def _varint_at(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode a Variable Byte Integer at ``pos``; return (value, next position), or (-1, pos)
    when ``end`` comes first. Raise ProtocolError when malformed or not minimally encoded."""
    value = 0
    shift = 0
    for i in range(pos, min(pos + 4, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i > pos:
                raise ProtocolError("variable byte integer not minimally encoded")
            return value, i + 1
        shift += 7
    if end - pos >= 4:
        raise ProtocolError("variable byte integer longer than 4 bytes")
    return -1, pos


def _binary_at(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise ProtocolError("string or binary field overruns the packet")
    return buf[pos + 2 : stop], stop


def decode_properties(buf: bytes, pos: int, end: int) -> tuple[dict[int, object], int]:
    """Properties at ``pos`` (length first). User properties come back as a list of pairs
    and subscription identifiers as a list; any other repeated property is an error."""
    length, p = _varint_at(buf, pos, end)
    stop = p + length
    if length < 0 or stop > end:
        raise ProtocolError("properties overrun the packet")
    props: dict[int, object] = {}
    while p < stop:
        ident = buf[p]
        shape = _SHAPES.get(ident)
        value: object
        if shape is None:
            raise ProtocolError(f"unknown property 0x{ident:02x}")
        if isinstance(shape, int):
            value = int.from_bytes(buf[p + 1 : p + 1 + shape], "big")
            p += 1 + shape
        elif shape == "varint":
            value, p = _varint_at(buf, p + 1, stop)
            if value < 0:
                raise ProtocolError("truncated subscription identifier")
        elif shape == "pair":
            key, p = _binary_at(buf, p + 1, stop)
            raw, p = _binary_at(buf, p, stop)
            value = (key.decode(), raw.decode())
        else:
            raw, p = _binary_at(buf, p + 1, stop)
            value = raw.decode() if shape == "text" else raw
        if shape in ("varint", "pair"):
            values = props.setdefault(ident, [])
            assert isinstance(values, list)
            values.append(value)
        elif ident in props:
            raise ProtocolError(f"property 0x{ident:02x} repeated")
        else:
            props[ident] = value
    if p != stop:
        raise ProtocolError("property value overruns the property block")
    return props, stop


def _last_properties(buf: bytes, pos: int, end: int) -> dict[int, object]:
    """Properties that must end the packet (CONNACK, PUBACK, DISCONNECT); none if absent."""
    if pos >= end:
        return {}
    props, stop = decode_properties(buf, pos, end)
    if stop != end:
        raise ProtocolError("trailing bytes after the properties")
    return props


def _opt_int(props: dict[int, object], ident: int, default: int | None = None) -> int | None:
    value = props.get(ident, default)
    return value if isinstance(value, int) else None


def _opt_str(props: dict[int, object], ident: int) -> str | None:
    value = props.get(ident)
    return value if isinstance(value, str) else None


def _connack(buf: bytes, p: int, end: int) -> Connack:
    if end - p < 2:
        raise ProtocolError("CONNACK too short")
    flags, reason = buf[p], buf[p + 1]
    if flags & 0xFE:
        raise ProtocolError("CONNACK reserved flags set")
    props = _last_properties(buf, p + 2, end)
    return Connack(
        bool(flags & 1),
        reason,
        _opt_int(props, 0x21) or 65535,  # receive maximum
        _opt_int(props, 0x22) or 0,  # topic alias maximum
        _opt_int(props, 0x27),  # maximum packet size
        _opt_int(props, 0x24, 2) or 0,  # maximum QoS
        _opt_str(props, 0x12),  # assigned client identifier
        _opt_int(props, 0x13),  # server keep alive
        _opt_int(props, 0x11),  # session expiry interval
        _opt_str(props, 0x1F),  # reason string
    )


def _ack(buf: bytes, p: int, end: int, kind: type[Suback] | type[Unsuback]) -> Suback | Unsuback:
    if end - p < 3:
        raise ProtocolError(f"{kind.__name__.upper()} too short")
    packet_id = (buf[p] << 8) | buf[p + 1]
    _, p = decode_properties(buf, p + 2, end)
    if p >= end:
        raise ProtocolError(f"{kind.__name__.upper()} without reason codes")
    return kind(packet_id, tuple(buf[p:end]))


def _control(first: int, buf: bytes, p: int, end: int) -> Packet:
    """Every packet but PUBLISH: rare, so clarity beats speed here."""
    kind = first >> 4
    if first & 0x0F:
        raise ProtocolError(f"reserved flags set on packet type {kind}")
    size = end - p
    if kind == 4:  # PUBACK
        if size < 2:
            raise ProtocolError("PUBACK too short")
        _last_properties(buf, p + 3, end)
        return Puback((buf[p] << 8) | buf[p + 1], buf[p + 2] if size > 2 else 0)
    if kind == 2:
        return _connack(buf, p, end)
    if kind in (9, 11):
        return _ack(buf, p, end, Suback if kind == 9 else Unsuback)
    if kind == 13:
        if size:
            raise ProtocolError("PINGRESP with a body")
        return Pingresp()
    if kind == 14:
        props = _last_properties(buf, p + 1, end)
        return Disconnect(buf[p] if size else 0, _opt_str(props, 0x1F))
    raise ProtocolError(f"unexpected packet type {kind} from the broker")


class Parser:
    """Incremental parser of the broker-to-client byte stream; survives any split of it.

    After each :meth:`feed`, ``controls`` is the number of non-PUBLISH packets and ``qos1``
    the number of QoS 1 PUBLISH packets it returned (so a receiver of a chunk made only of
    messages can skip sorting them). After a :class:`ProtocolError` the stream is unusable.
    """

    __slots__ = ("_max", "_need", "_pending", "controls", "qos1")

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH + 5) -> None:
        self._max = max_packet_size
        self._pending = bytearray()
        self._need = self.controls = self.qos1 = 0

    def feed(self, data: bytes | bytearray | memoryview, received_at_ms: int = 0) -> list[Packet]:
        """Parse every complete packet in ``data`` (after any bytes kept from before)."""
        if self._pending:
            self._pending += data
            if len(self._pending) < self._need:
                self.controls = self.qos1 = 0
                return []
            data = bytes(self._pending)
            self._pending = bytearray()
        elif type(data) is not bytes:
            data = bytes(data)
        try:
            out, pos = self._parse(data, received_at_ms)
        except (IndexError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"malformed packet: {exc}") from exc
        if pos < len(data):
            self._pending = bytearray(memoryview(data)[pos:])
        return out

    def _parse(self, buf: bytes, now: int) -> tuple[list[Packet], int]:
        out: list[Packet] = []
        append = out.append
        new = tuple.__new__
        received = Received
        n = len(buf)
        pos = controls = qos1 = self._need = 0
        while n - pos >= 2:
            first = buf[pos]
            length = buf[pos + 1]
            if length < 0x80:
                start = pos + 2
            elif n - pos > 2 and buf[pos + 2] < 0x80 and buf[pos + 2]:  # two bytes: < 16 KiB
                length = (length & 0x7F) | (buf[pos + 2] << 7)
                start = pos + 3
            else:
                length, start = _varint_at(buf, pos + 1, n)
                if length < 0:  # the remaining length itself is split
                    break
            end = start + length
            if end - pos > self._max:
                raise ProtocolError(f"packet of {end - pos} bytes exceeds the maximum {self._max}")
            if end > n:
                self._need = end - pos
                break
            if first & 0xF0 == 0x30:  # PUBLISH
                qos = (first >> 1) & 3
                p = start + 2 + ((buf[start] << 8) | buf[start + 1])
                topic = buf[start + 2 : p].decode()
                if qos:
                    if qos != 1:
                        raise ProtocolError(f"PUBLISH with QoS {qos}")
                    packet_id = (buf[p] << 8) | buf[p + 1]
                    if not packet_id:
                        raise ProtocolError("QoS 1 PUBLISH with packet id 0")
                    p += 2
                    qos1 += 1
                else:
                    packet_id = 0
                    if first & 0x08:
                        raise ProtocolError("DUP set on a QoS 0 PUBLISH")
                expiry = None
                if buf[p] == 0:
                    p += 1
                else:
                    props, p = decode_properties(buf, p, end)
                    if 0x23 in props:
                        raise ProtocolError("topic alias received but never allowed")
                    expiry = _opt_int(props, 0x02)  # message expiry interval
                if p > end or not topic:
                    raise ProtocolError("malformed PUBLISH")
                payload = buf[p:end]
                retain = (first & 1) == 1
                dup = (first & 8) == 8
                append(new(received, (topic, payload, qos, retain, packet_id, now, dup, expiry)))
            else:
                append(_control(first, buf, start, end))
                controls += 1
            pos = end
        self.controls = controls
        self.qos1 = qos1
        return out, pos
