"""The API's answers as pydantic models: what ``/openapi.json`` describes.

The routes build plain dicts (the store, the alert and ticket books already speak dicts).
An answer of one object (a device, an acknowledged alert, a resolved ticket) is validated
against its model by FastAPI and written by pydantic's core (``response_model``); a key the
model does not declare is then an error, never silently dropped. A list or page (devices,
alerts, tickets, audit entries, events, readings: thousands of items) declares its model for
the schema only and is written by orjson (:func:`schema_only`). The integration test
``test_api_schema`` checks real answers of every one of these routes against ``/openapi.json``.

A key that only some answers carry (``acknowledged_at``, ``ts_flag``, ``command_id`` of a
refusal) is declared with :func:`absent`: not required, never null, and left out of the answer
when the dict has no such key (the validated routes set ``response_model_exclude_unset``).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway.audit import Outcome


def schema_only(body: dict[str, Any]) -> Response:
    """The answer of a route whose model is declared for the schema only: the lists and
    pages. Validation costs per item: in ``bench/api_pages.py`` (a 10,000-point readings page
    and a 10,000-event page through the real routes) a page validated against its model took
    markedly longer than the plain dict the routes returned before; written by orjson, as
    here, it costs no more than that dict did."""
    return Response(orjson.dumps(body), media_type="application/json")


Number = bool | int | float
"""A reading: booleans stay booleans and integers integers (a JSON 1 is not turned into 1.0)."""


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str) -> Any:
    """A key present only in some answers: not required, never null, no default in the
    schema (the route's ``response_model_exclude_unset`` leaves it out when unset)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


class Answer(BaseModel):
    # extra="forbid": a key the model does not declare fails the answer (a 500 in any test)
    # instead of being dropped from it without a word; populate_by_name: ``class`` is a
    # keyword, the field is ``device_class`` with that alias
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorBody(Answer):
    """Every error but a 422 from parameter checks and a refused command."""

    detail: str


class Alert(Answer):
    id: int
    community: str
    device: str
    device_class: str = Field(alias="class")
    rule: str
    title: str
    severity: str
    status: Literal["active", "acknowledged", "cleared"]
    raised_at: str = Field(description="ISO-8601, UTC")
    last_at: str = Field(description="ISO-8601, UTC: the latest repeat")
    count: int
    details: dict[str, Any]
    acknowledged_at: str = absent("ISO-8601, UTC; once acknowledged")
    acknowledged_by: str = absent("who acknowledged it; once acknowledged")
    cleared_at: str = absent("ISO-8601, UTC; once cleared")
    cleared_reason: str = absent("why it cleared; once cleared")


class AlertList(Answer):
    alerts: list[Alert]
    count: int


class Ticket(Answer):
    id: int
    community: str
    device: str
    device_class: str = Field(alias="class")
    rule: str
    title: str
    severity: str
    status: Literal["open", "resolved"]
    opened_at: str = Field(description="ISO-8601, UTC")
    updated_at: str = Field(description="ISO-8601, UTC")
    occurrences: int
    alert_id: int
    recovered: bool
    recovered_at: str = absent("ISO-8601, UTC; once the device recovered")
    resolved_at: str = absent("ISO-8601, UTC; once resolved")
    resolution: str = absent("how it was resolved; once resolved")


class TicketList(Answer):
    tickets: list[Ticket]
    count: int


class Latest(Answer):
    value: Number
    ts: int = Field(description="epoch ms")
    unit: str


class Device(Answer):
    id: str
    community: str
    device_class: str = Field(alias="class")
    building: str
    registered: bool = Field(description="false: discovered on the wire")
    adapter: str = Field(
        description="the vendor ecosystem's adapter (CONTRACT.md 7.1); empty: a native device"
    )
    source: str = Field(description="the ecosystem's own identity of the device; empty: native")
    online: bool | None = Field(description="null: never heard")
    last_seen: int | None = Field(description="epoch ms")
    state_since: int | None = Field(description="epoch ms")
    expect_every_s: float | None
    latest: dict[str, Latest]


class DeviceList(Answer):
    devices: list[Device]
    count: int


class Point(Answer):
    ts: int = Field(description="epoch ms; a bucket's start when downsampled")
    value: Number


class Readings(Answer):
    device: str
    field: str
    unit: str
    points: list[Point]
    next_cursor: str | None


class Event(Answer):
    id: int
    device: str
    community: str
    device_class: str = Field(alias="class")
    event: str | None
    ts: int = Field(description="epoch ms")
    attrs: dict[str, Any]
    ts_flag: Literal["missing", "future", "past"] = absent(
        "why ts is the gateway's receive time, not the device's"
    )


class EventPage(Answer):
    events: list[Event]
    next_cursor: str | None


class AuditEntry(Answer):
    id: int
    ts: int = Field(description="epoch ms")
    principal: str
    principal_kind: str = Field(description="resident, platform or device")
    credential: str
    community: str
    device: str
    action: str
    args: dict[str, Any]
    command_id: str
    outcome: Outcome
    reason: str
    latency_ms: float | None
    path: str = Field(
        description="how a command went: `signed`, or the adapter it went through (7.4)"
    )


class AuditPage(Answer):
    entries: list[AuditEntry]
    next_cursor: str | None


class CommandDone(Answer):
    """The device acknowledged: ``200``."""

    command_id: str
    ok: Literal[True]
    latency_ms: float


class CommandRefused(Answer):
    """Any other outcome of a command (``403`` ... ``504``, and the ``422`` of a reused
    ``Idempotency-Key`` or bad args)."""

    detail: str
    outcome: Outcome
    command_id: str = absent("once the command was sent")
    ok: Literal[False] = absent("once the command was sent")
    latency_ms: float = absent("once the command was sent")
    expires_at: int = absent("epoch ms (504, and a 503 after the broker took it)")
    may_execute_until: int = absent(
        "epoch ms, the gateway's clock: the device may still execute the command until then"
    )
    late_execution: str = absent("what the device may still do, in words")


def errors(**described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: ``errors(e404="no such device")`` declares a 404 whose body
    is :class:`ErrorBody`."""
    return {int(code[1:]): {"model": ErrorBody, "description": d} for code, d in described.items()}


UNAUTHORIZED = "no, bad or expired token"
PLATFORM_ONLY = "a resident token: this endpoint needs a platform key"
BAD_PARAMETER = "a bad parameter (`detail` says which)"


class ValidationProblem(Answer):
    """One problem of a request FastAPI's parameter checks refused (its own format)."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any = absent("the value at fault")
    ctx: dict[str, Any] = absent("the constraint, e.g. max_length")


class ValidationBody(Answer):
    """``422``: the request's parameters or body are not what the route takes."""

    detail: list[ValidationProblem]
