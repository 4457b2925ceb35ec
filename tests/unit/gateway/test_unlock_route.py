"""The unlock route's parameters and answers (docs/api.md), over a fake command service.

Every answer is also read back through the model the route declares for its status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.testclient import TestClient

from gateway.api import doors
from gateway.api.models import CommandDone, CommandRefused, ErrorBody, ValidationBody
from gateway.app import create_app
from gateway.audit import Outcome
from gateway.auth import Authenticator, Principal
from gateway.commands import Result
from gateway.config import AuthSettings, Registry, Settings

SECRET = "resident-token-secret-0123456789abcdef"
KEY = "platform-key-all-0123456789"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class FakeCommands:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def execute(
        self,
        principal: Principal,
        device: str,
        action: str,
        args: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        doors_only: bool = False,
    ) -> Result:
        self.calls.append((device, action, args, idempotency_key, doors_only))
        await asyncio.sleep(0)
        if device == "offline-door":
            return Result(Outcome.OFFLINE, "device offline")
        return Result(Outcome.OK, command_id="c-1", latency_ms=1.5)


@dataclass
class FakeGateway:
    authenticator: Authenticator
    commands: FakeCommands


@pytest.fixture
def client() -> tuple[TestClient, FakeCommands]:
    auth = Authenticator(
        AuthSettings(jwt_secret=SECRET, jwt_audience="gw", jwt_issuer="app", platform_keys=[KEY]),
        ["c1"],
    )
    commands = FakeCommands()
    app = FastAPI()
    app.state.gateway = FakeGateway(auth, commands)
    app.include_router(doors.router)
    return TestClient(app), commands


BEARER = {"Authorization": f"Bearer {KEY}"}
JSON = {**BEARER, "Content-Type": "application/json"}
UNLOCK = ("b1-entrance", "unlock")
CASES: list[tuple[str, dict[str, str], bytes | None, int, type[BaseModel], Any]] = [
    # door, headers, body -> status, the model the answer reads as, what was executed
    ("b1-entrance", BEARER, None, 200, CommandDone, (*UNLOCK, {"seconds": 5}, None, True)),
    (
        "b1-entrance",
        JSON,
        b'{"seconds": 3}',
        200,
        CommandDone,
        (*UNLOCK, {"seconds": 3}, None, True),
    ),
    ("b1-entrance", JSON, b"null", 200, CommandDone, (*UNLOCK, {"seconds": 5}, None, True)),
    (
        "b1-entrance",
        {**JSON, "Idempotency-Key": "k-1"},
        b"{}",
        200,
        CommandDone,
        (*UNLOCK, {"seconds": 5}, "k-1", True),
    ),
    (
        "b1-entrance",
        {**BEARER, "Content-Type": "application/vnd.unlock+json"},
        b'{"seconds": 2}',
        200,
        CommandDone,
        (*UNLOCK, {"seconds": 2}, None, True),
    ),
    (
        "offline-door",
        BEARER,
        None,
        503,
        CommandRefused,
        ("offline-door", "unlock", {"seconds": 5}, None, True),
    ),
    ("b1-entrance", JSON, b'{"seconds": 0}', 422, ValidationBody, None),
    ("b1-entrance", JSON, b'{"seconds": 31}', 422, ValidationBody, None),
    ("b1-entrance", JSON, b'{"seconds": "x"}', 422, ValidationBody, None),
    ("b1-entrance", JSON, b'{"seconds": 2, "door": "b2"}', 422, ValidationBody, None),
    ("b1-entrance", JSON, b"{not json", 422, ValidationBody, None),
    ("b1-entrance", JSON, b"[1, 2]", 422, ValidationBody, None),
    ("b1-entrance", {**JSON, "Idempotency-Key": "k" * 201}, b"{}", 422, ValidationBody, None),
    # a body that is not declared JSON is refused, not parsed
    (
        "b1-entrance",
        {**BEARER, "Content-Type": "text/plain"},
        b'{"seconds": 3}',
        422,
        ValidationBody,
        None,
    ),
    # the token is checked before the parameters
    ("b1-entrance", {"Content-Type": "application/json"}, b'{"seconds": 99}', 401, ErrorBody, None),
    ("b1-entrance", {"Authorization": "Bearer nope"}, None, 401, ErrorBody, None),
]


@pytest.mark.parametrize(("door", "headers", "body", "status", "model", "executed"), CASES)
def test_unlock_answers(client, door, headers, body, status, model, executed):
    http, commands = client
    r = http.post(f"/api/v1/doors/{door}/unlock", headers=headers, content=body)
    assert r.status_code == status, r.text
    model.model_validate(r.json())
    assert commands.calls == ([executed] if executed else [])
    if status == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_one_route_serves_the_unlock_and_the_schema_declares_its_answers():
    app = create_app(Settings(), Registry())  # not started: only its routes are looked at
    path = "/api/v1/doors/{door_id}/unlock"
    # no route of its own ahead of the routers' (there was a hand-written twin once)
    assert not any(getattr(r, "path", "") == path for r in app.router.routes)
    responses = app.openapi()["paths"][path]["post"]["responses"]
    assert set(responses) == {"200", "401", "403", "404", "409", "422", "429", "502", "503", "504"}
