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


_CACHE: dict[tuple[str, str], Topic] = {}
_CACHE_MAX = 200_000  # a few topics per device; cleared, not grown, beyond this


def parse(topic: str, prefix: str) -> Topic:
    """Split a native topic; raise :class:`Rejected` (``bad_topic``) when it breaks the scheme.
    Valid topics are cached: a device publishes on the same few topics all its life."""
    key = (topic, prefix)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    parsed = _parse(topic, prefix)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = parsed
    return parsed


def _parse(topic: str, prefix: str) -> Topic:
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
