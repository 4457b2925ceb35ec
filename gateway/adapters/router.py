"""Which adapter a received MQTT topic belongs to: a tree of the configured topic filters,
built once, walked once per message (no loop over every adapter per message).

A topic matches a filter level by level: the level itself first, then ``+``, then ``#``; the
first filter found wins. Filters are checked when the tree is built: two ecosystems may not
share a filter, and none may reach into the native topics (``{prefix}/...``), which the
ingest reads itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devices.adapters.base import Adapter, Options
from devices.model import Rejected


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[adapters]]`` entry: its adapter, options and community."""

    adapter: Adapter
    options: Options
    community: str
    filters: tuple[str, ...] = ()
    device_class: str = ""  # of unbound devices whose messages do not tell theirs

    @property
    def name(self) -> str:
        return self.adapter.name


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    route: Route | None = None  # a filter ends here
    rest: Route | None = None  # ``#`` under this node


class FilterError(ValueError):
    """A filter that cannot be routed: overlapping, malformed or native."""


def entry_filters(adapter: Adapter, options: Options) -> tuple[str, ...]:
    """The adapter's filters for these options; ``FilterError`` for a bad option."""
    try:
        filters = adapter.subscriptions(options)
    except Rejected as exc:
        raise FilterError(f"adapter {adapter.name}: {exc}") from None
    for f in filters:
        levels = f.split("/")
        bad = (
            not f
            or any(("+" in lv or "#" in lv) and lv not in ("+", "#") for lv in levels)
            or "#" in levels[:-1]
        )
        if bad:
            raise FilterError(f"adapter {adapter.name}: malformed topic filter {f!r}")
    return filters


class TopicRouter:
    """Routes a topic to the :class:`Route` whose filter matches it, or ``None``."""

    def __init__(self, routes: Iterable[Route], *, native_prefix: str) -> None:
        self._root = _Node()
        self.routes: tuple[Route, ...] = tuple(routes)
        self._cache: dict[str, Route | None] = {}
        seen: dict[str, str] = {}
        for route in self.routes:
            for f in route.filters:
                if _reaches_native(f, native_prefix):
                    raise FilterError(
                        f"adapter {route.name}: filter {f!r} overlaps the native topics"
                        f" ({native_prefix}/COMMUNITY/CLASS/DEVICE/MESSAGE)"
                    )
                if f in seen:
                    raise FilterError(f"adapter {route.name}: filter {f!r} is already {seen[f]}'s")
                seen[f] = route.name
                self._add(f, route)

    def _add(self, topic_filter: str, route: Route) -> None:
        node = self._root
        levels = topic_filter.split("/")
        for level in levels:
            if level == "#":
                node.rest = route
                return
            node = node.children.setdefault(level, _Node())
        node.route = route

    @property
    def filters(self) -> list[str]:
        """Every filter to subscribe to."""
        return [f for r in self.routes for f in r.filters]

    def match(self, topic: str) -> Route | None:
        """The route of ``topic``; cached, since a device publishes on a few topics all its
        life (the cache is cleared, not grown, past 100,000 topics)."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        route = None if topic.startswith("$") else _walk(self._root, topic.split("/"), 0)
        if len(self._cache) >= 100_000:
            self._cache.clear()
        self._cache[topic] = route
        return route


def _walk(node: _Node, levels: list[str], i: int) -> Route | None:
    if i == len(levels):
        return node.route or node.rest  # ``a/#`` matches ``a`` too
    child = node.children.get(levels[i])
    if child is not None:
        found = _walk(child, levels, i + 1)
        if found is not None:
            return found
    wild = node.children.get("+")
    if wild is not None:
        found = _walk(wild, levels, i + 1)
        if found is not None:
            return found
    return node.rest


def _reaches_native(topic_filter: str, prefix: str) -> bool:
    """Whether a filter could match a native topic, ``{prefix}`` and four more levels."""
    levels = topic_filter.split("/")
    if levels[0] not in (prefix, "+", "#"):
        return False
    return len(levels) == 5 or (levels[-1] == "#" and len(levels) <= 6)


def build_router(
    entries: Iterable[tuple[Adapter, Options, str]], *, native_prefix: str
) -> TopicRouter:
    """The router of the MQTT entries among ``(adapter, options, community)``; an entry's
    ``device_class`` option is the class of its unbound devices that do not tell theirs."""
    routes = [
        Route(
            adapter,
            options,
            community,
            entry_filters(adapter, options),
            options.get("device_class", ""),
        )
        for adapter, options, community in entries
        if adapter.transport == "mqtt"
    ]
    return TopicRouter(routes, native_prefix=native_prefix)
