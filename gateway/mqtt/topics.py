"""The native topic scheme: ``{prefix}/{community}/{class}/{device}/{message}``."""

from __future__ import annotations

import re
from typing import NamedTuple

from devices.model import Rejected

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class Topic(NamedTuple):
    community: str
    device_class: str
    device: str
    message: str


def subscription(prefix: str) -> str:
    """The one filter the gateway subscribes to: everything under the prefix, so that a topic
    that breaks the scheme is seen (and dead-lettered) instead of silently ignored."""
    return f"{prefix}/#"


def parse(topic: str, prefix: str) -> Topic:
    """Split a native topic; raise :class:`Rejected` (``bad_topic``) when it breaks the scheme."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix:
        raise Rejected("bad_topic", f"expected {prefix}/COMMUNITY/CLASS/DEVICE/MESSAGE")
    _, community, device_class, device, message = parts
    if not _ID.fullmatch(community):
        raise Rejected("bad_topic", f"community {community[:70]!r} is not a valid id")
    if not _ID.fullmatch(device):
        raise Rejected("bad_topic", f"device {device[:70]!r} is not a valid id")
    return Topic(community, device_class, device, message)


def device_topic(prefix: str, community: str, device_class: str, device: str, message: str) -> str:
    return f"{prefix}/{community}/{device_class}/{device}/{message}"
