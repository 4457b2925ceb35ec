"""Commands to adapter devices (CONTRACT.md 7.4), as pure data: what to send and what confirms
it. The gateway sends the plan (an MQTT publish on the ecosystem's broker, or an HTTP request
with digest auth) and waits for the confirmation; nothing here does I/O.

One table, ``PLANS``, maps an adapter to its encoder; each encoder maps the contract's actions
(``unlock`` of an access device, ``open_barrier`` of a parking one) onto its vendor's command:

- ``zigbee2mqtt``: ``<base>/<source>/set`` ``{"state": "UNLOCK"}`` (a lock; ``{"state":
  "ON"}`` for a relay), confirmed by the next state (``locked`` false, ``relay_on`` true);
- ``shelly``: ``Switch.Set`` on ``<source>/rpc`` (``id`` door-1, ``on``, ``toggle_after`` the
  seconds), confirmed by the switch's status (``relay_on``, ``relay_lN_on``);
- ``tasmota``: ``cmnd/<source>/POWER<n>`` ``ON`` (with the options' ``full_topic``),
  confirmed by the relay's ``RESULT``;
- ``hikvision``: ``PUT <isapi_url>/ISAPI/AccessControl/RemoteControl/door/<door>`` with digest
  auth, confirmed by the answer's ``ResponseStatus`` (``statusCode`` 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from devices.adapters import hikvision
from devices.adapters.base import Options
from devices.adapters.tasmota import DEFAULT_FULL_TOPIC
from devices.model import Rejected, Value

ACTIONS = ("unlock", "open_barrier")
"""The contract's actions an adapter device may take: each opens something for a while."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a command plan needs of the device's binding."""

    source: str
    door: int = 1  # the door, relay channel or output (1-based)
    relay: bool = False  # a Zigbee2MQTT device switched as a relay, not a lock
    isapi_url: str = ""


@dataclass(frozen=True, slots=True)
class CommandPlan:
    """One command to send: an MQTT ``topic``/``payload``, or an HTTP request (``method``,
    ``url``, ``content_type``, ``body``). ``confirm`` is the reading (name, value) of the
    device's next state that confirms it; an HTTP plan is confirmed by its answer
    (:func:`confirmed_by_answer`)."""

    transport: str
    topic: str = ""
    payload: bytes = b""
    method: str = ""
    url: str = ""
    content_type: str = ""
    body: bytes = b""
    confirm: tuple[str, Value] | None = None


def _channel(name: str, door: int) -> str:
    """``relay_on`` for the first channel, ``relay_l2_on`` for the second (CONTRACT.md 7.3)."""
    return name if door <= 1 else name.replace("_on", f"_l{door}_on")


def _seconds(args: Mapping[str, Any]) -> int:
    seconds = args.get("seconds", 5)
    return seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else 5


def _zigbee2mqtt(
    target: Target, action: str, args: Mapping[str, Any], options: Options
) -> CommandPlan:
    base = options.get("base_topic", "zigbee2mqtt").rstrip("/")
    word, confirm = ("ON", ("relay_on", True)) if target.relay else ("UNLOCK", ("locked", False))
    return CommandPlan(
        "mqtt",
        topic=f"{base}/{target.source}/set",
        payload=orjson.dumps({"state": word}),
        confirm=confirm,
    )


def _shelly(target: Target, action: str, args: Mapping[str, Any], options: Options) -> CommandPlan:
    request = {
        "id": 1,
        "src": options.get("rpc_src", "courtyard"),
        "method": "Switch.Set",
        "params": {"id": target.door - 1, "on": True, "toggle_after": _seconds(args)},
    }
    return CommandPlan(
        "mqtt",
        topic=f"{target.source}/rpc",
        payload=orjson.dumps(request),
        confirm=(_channel("relay_on", target.door), True),
    )


def _tasmota(target: Target, action: str, args: Mapping[str, Any], options: Options) -> CommandPlan:
    full_topic = options.get("full_topic", DEFAULT_FULL_TOPIC)
    prefix = full_topic.replace("%prefix%", "cmnd").replace("%topic%", target.source)
    power = "POWER" if target.door <= 1 else f"POWER{target.door}"
    return CommandPlan(
        "mqtt",
        topic=prefix.rstrip("/") + "/" + power,
        payload=b"ON",
        confirm=(_channel("relay_on", target.door), True),
    )


def _hikvision(
    target: Target, action: str, args: Mapping[str, Any], options: Options
) -> CommandPlan:
    if not target.isapi_url:
        raise Rejected("not_commandable", "the binding has no isapi_url")
    method, path, content_type, body = hikvision.remote_door_request(target.door)
    return CommandPlan(
        "http",
        method=method,
        url=target.isapi_url.rstrip("/") + path,
        content_type=content_type,
        body=body,
    )


Encoder = Callable[[Target, str, Mapping[str, Any], Options], CommandPlan]

PLANS: Mapping[str, Encoder] = MappingProxyType(
    {
        "hikvision": _hikvision,
        "shelly": _shelly,
        "tasmota": _tasmota,
        "zigbee2mqtt": _zigbee2mqtt,
    }
)
"""Adapters whose devices take commands, and how."""


def plan(
    adapter: str, target: Target, action: str, args: Mapping[str, Any], options: Options
) -> CommandPlan:
    """The plan of one command, or ``Rejected`` (``not_commandable``) for an adapter or an
    action that has none."""
    encoder = PLANS.get(adapter)
    if encoder is None:
        raise Rejected("not_commandable", f"{adapter} devices take no commands")
    if action not in ACTIONS:
        raise Rejected("not_commandable", f"{action} is not sent through {adapter}")
    return encoder(target, action, args, options)


def confirmed_by_answer(status: int, content_type: str, body: bytes) -> tuple[bool, str]:
    """Whether an HTTP command's answer confirms it, and why not: a 2xx with an ISAPI
    ``ResponseStatus`` of code 1."""
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    try:
        answer = hikvision.parse_response_status(content_type, body)
    except Rejected as exc:
        return False, f"unreadable answer ({exc.reason})"
    if answer.ok:
        return True, ""
    return False, (answer.sub_status_code or answer.status_string or "refused")[:64]
