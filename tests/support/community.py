"""Community files for tests and benches, built from data instead of hand-written TOML:
``community_file(communities=..., buildings=..., devices=[dev(...), ...])``; plus the shorthands
the alerting end-to-end tests use (a few doors, one device, a webhook config)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tests.support.webhook_receiver import SECRET


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def _table(name: str, fields: Mapping[str, Any]) -> str:
    body = "".join(f"{k} = {_value(v)}\n" for k, v in fields.items() if v is not None)
    return f"[[{name}]]\n{body}"


def dev(id_: str, community: str = "c1", cls: str = "access", **fields: Any) -> dict[str, Any]:
    """One ``[[devices]]`` entry: ``building``, ``secret``, ``expect_every_s``, ``parent``,
    ``command_rule``... as keyword arguments (None leaves a key out)."""
    return {"id": id_, "community": community, "class": cls, **fields}


def community_file(
    *,
    communities: Iterable[str] = ("c1",),
    buildings: Mapping[str, str] | None = None,
    devices: Iterable[Mapping[str, Any]] = (),
) -> str:
    """The TOML of a community file; ``buildings`` maps a building id to its community."""
    parts = [_table("communities", {"id": c}) for c in communities]
    parts += [_table("buildings", {"id": b, "community": c}) for b, c in (buildings or {}).items()]
    parts += [_table("devices", d) for d in devices]
    return "\n".join(parts)


def registry(doors: int = 3, extra: str = "") -> str:
    """A community ``c1`` with building ``b1`` and ``doors`` doors (``door-000``...)."""
    return community_file(
        buildings={"b1": "c1"}, devices=[dev(f"door-{i:03d}") for i in range(doors)]
    ) + ("\n" + extra if extra else "")


def device(id_: str, cls: str, every: float | None = None) -> str:
    return _table("devices", dev(id_, cls=cls, expect_every_s=every))


def config(url: str, rules: str = "") -> str:
    return f'\n[[webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\ntimeout_s = 2\n' + rules
