"""The MQTT transport's error tree.

Every failure the client raises is an :class:`MqttError`; socket and TLS errors are
translated at the boundary (``raise NotConnected(...) from exc``), so callers catch one tree.
"""

from __future__ import annotations


class MqttError(Exception):
    """Base of every error raised by ``gateway.mqtt``."""


class ProtocolError(MqttError):
    """The peer sent bytes that break MQTT 5.0 (or a feature this client does not speak)."""


class NotConnected(MqttError):
    """No usable connection to the broker (never reached, lost, or the client is stopped)."""


class MqttTimeout(MqttError):
    """The broker did not answer in time (CONNACK, SUBACK or PUBACK)."""


REASONS = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def describe(reason_code: int) -> str:
    """``0x87 (not authorized)``: a reason code as it should appear in a log line."""
    name = REASONS.get(reason_code)
    return f"0x{reason_code:02x} ({name})" if name else f"0x{reason_code:02x}"


class ReasonCodeError(MqttError):
    """The broker answered with a failure reason code (0x80 or above)."""

    def __init__(self, reason_code: int, detail: str = "") -> None:
        self.reason_code = reason_code
        text = f"reason code {describe(reason_code)}"
        super().__init__(f"{text}: {detail}" if detail else text)


class ConnectionRefused(ReasonCodeError):
    """CONNACK carried a failure reason code (bad credentials, not authorized, ...)."""


class SubscribeRejected(ReasonCodeError):
    """SUBACK refused a topic filter."""

    def __init__(self, topic_filter: str, reason_code: int) -> None:
        self.topic_filter = topic_filter
        super().__init__(reason_code, f"subscription to {topic_filter!r} refused")


class PublishRejected(ReasonCodeError):
    """PUBACK for one of our QoS 1 publishes carried a failure reason code."""
