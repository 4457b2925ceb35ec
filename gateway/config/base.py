"""What every part of the configuration shares: the error an operator reads, the strict
section base, identifiers, and how a validation error is phrased (secrets hidden)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
)

ENV_PREFIX = "COURTYARD_"
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
DeviceClass = Literal["access", "parking", "meter", "locker"]


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: which key, which value, what to do."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def format_error(err: ValidationError, source: str, data: dict[str, Any]) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("function-after",))
        value = e.get("input")
        if any(s in loc for s in ("password", "secret", "token", "key")):
            shown = "<hidden>"
        else:
            shown = repr(value) if not isinstance(value, dict) else "a table"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc or '(top)'} = {shown}: {msg}")
    return "\n".join(lines)
