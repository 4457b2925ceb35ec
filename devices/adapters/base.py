"""What every adapter is: a pure converter from one ecosystem's messages to Courtyard's.

An adapter takes the bytes of one vendor message (and the MQTT topic or HTTP content type
it came with) and returns an :class:`Adapted`: the ecosystem's own identity of the device
(``source``), the contract class it maps onto, and the normalized messages in the common
vocabulary of CONTRACT.md section 7.3. It raises :class:`devices.model.Rejected` with a
stable reason for anything it cannot read. No I/O, no globals, no state between calls.

Each ecosystem is one module of ``devices.adapters`` that builds one :class:`Adapter` from
tables of converters (per model, message kind or event code), not a chain of ``if``s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.model import Value

Transport = Literal["mqtt", "http", "serial"]
AdaptedKind = Literal["telemetry", "event", "status", "command", "request"]


@dataclass(frozen=True, slots=True)
class AdaptedMessage:
    """One normalized message, as ``courtyard decode`` prints it (CONTRACT.md 7.5).

    - ``telemetry``: ``readings`` (names and units of section 7.3 or the suffix-unit rule);
    - ``event``: ``event`` and ``attrs``;
    - ``status``: ``state`` is ``"online"`` or ``"offline"``;
    - ``command``: a command seen on the wire (e.g. a Zigbee2MQTT ``/set``): ``action``;
    - ``request``: a master's serial request: ``attrs`` say what it asks for.

    ``ts_ms`` is the device's own time when the message carries one (epoch ms), else
    ``None`` (the hub uses its receive time). ``seq`` is the ecosystem's message counter
    when it has one (a LoRaWAN frame counter, a Hikvision ``serialNo``): with ``ts_ms`` it
    is the de-duplication key, so a repeated uplink is stored once.
    """

    kind: AdaptedKind
    readings: Mapping[str, Value] = field(default_factory=dict)
    event: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    state: str | None = None
    action: str | None = None
    ts_ms: int | None = None
    seq: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The message as ``courtyard decode`` prints it: only what applies to its kind."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "telemetry":
            out["readings"] = dict(self.readings)
        elif self.kind == "event":
            out["event"] = self.event
            out["attrs"] = dict(self.attrs)
        elif self.kind == "status":
            out["state"] = self.state
        elif self.kind == "command":
            out["action"] = self.action
        elif self.kind == "request":
            out["attrs"] = dict(self.attrs)
        if self.ts_ms is not None:
            out["ts"] = self.ts_ms
        if self.seq is not None:
            out["seq"] = self.seq
        return out


@dataclass(frozen=True, slots=True)
class Picture:
    """An image that came with an HTTP push (a plate or face snapshot): kept on disk by the
    gateway and referenced from the event, never stored in the journal row."""

    content_type: str
    data: bytes
    name: str = ""


@dataclass(frozen=True, slots=True)
class Adapted:
    """The result of one adapter message.

    ``ignored`` is a stable reason (``"bridge_log"``, ``"set_echo"``, ...) for a topic of the
    ecosystem that carries no device message: counted by the gateway, not dead-lettered,
    and ``messages`` is empty. ``device_class`` is the adapter's best guess from the message
    (a contact sensor is ``access``, a plug with metering ``meter``); a device bound in the
    registry keeps its own class. ``identity`` is an identity that the body itself claims
    (a MAC address or serial number in an HTTP push), checked against the binding's
    ``source`` by the gateway; ``""`` when the body names none.
    """

    adapter: str
    source: str
    device_class: str
    messages: tuple[AdaptedMessage, ...] = ()
    ignored: str = ""
    identity: str = ""
    pictures: tuple[Picture, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The result as ``courtyard decode`` prints it."""
        out: dict[str, Any] = {
            "adapter": self.adapter,
            "source": self.source,
            "class": self.device_class,
            "messages": [m.as_json() for m in self.messages],
        }
        if self.ignored:
            out["ignored"] = self.ignored
        if self.pictures:
            out["pictures"] = [
                {"content_type": p.content_type, "bytes": len(p.data), "name": p.name}
                for p in self.pictures
            ]
        return out


Options = Mapping[str, str]
"""An ecosystem's settings from the gateway config's ``[[adapters]]`` entry (e.g.
``base_topic`` for Zigbee2MQTT, ``full_topic`` for Tasmota); adapters supply defaults."""

Decoder = Callable[[str, bytes, Options], Adapted]
"""``(topic or content type, payload, options) -> Adapted``, or raises ``Rejected``.
For MQTT adapters the first argument is the topic; for HTTP adapters the request's
``Content-Type`` header (the body may be ``multipart/form-data``)."""

Reply = Callable[[Adapted], tuple[str, bytes]]
"""For HTTP devices that expect an answer in their own format (Vzenith): the content type
and body to send once the message is committed."""


@dataclass(frozen=True, slots=True)
class Adapter:
    """One ecosystem: its name (CONTRACT.md section 7), its transport, how to subscribe to
    it (MQTT: topic filters from the options), and its pure decoder."""

    name: str
    transport: Transport
    decode: Decoder
    subscriptions: Callable[[Options], tuple[str, ...]] = lambda _options: ()
    reply: Reply | None = None
