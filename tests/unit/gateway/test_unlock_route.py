"""The unlock's fast Starlette route answers exactly like its FastAPI declaration.

Two apps over the same fake gateway: one with only the FastAPI route, one with the fast route
mounted first (as ``gateway.app`` does). Every request of the matrix gets the same status,
body and headers from both, and the command service sees the same calls.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from gateway.api import doors
from gateway.auth import Authenticator, Principal
from gateway.commands import Result
from gateway.config import AuthSettings

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
        self.calls.append((principal.name, device, action, args, idempotency_key, doors_only))
        await asyncio.sleep(0)
        if device == "offline-door":
            return Result("offline", "device offline")
        return Result("ok", command_id="c-1", latency_ms=1.5)


@dataclass
class FakeGateway:
    authenticator: Authenticator
    commands: FakeCommands


def app(fast: bool) -> tuple[FastAPI, FakeCommands]:
    auth = Authenticator(
        AuthSettings(jwt_secret=SECRET, jwt_audience="gw", jwt_issuer="app", platform_keys=[KEY]),
        ["c1"],
    )
    commands = FakeCommands()
    a = FastAPI()
    a.state.gateway = FakeGateway(auth, commands)
    if fast:
        a.router.routes[0:0] = doors.FAST_ROUTES
    a.include_router(doors.router)
    return a, commands


BEARER = {"Authorization": f"Bearer {KEY}"}
CASES: list[tuple[str, dict[str, str], bytes | None]] = [
    ("b1-entrance", BEARER, None),
    ("b1-entrance", BEARER, b'{"seconds": 3}'),
    ("b1-entrance", BEARER, b"null"),
    ("b1-entrance", {**BEARER, "Idempotency-Key": "k-1"}, b"{}"),
    ("offline-door", BEARER, None),
    ("b1-entrance", BEARER, b'{"seconds": 0}'),
    ("b1-entrance", BEARER, b'{"seconds": 31}'),
    ("b1-entrance", BEARER, b'{"seconds": "x"}'),
    ("b1-entrance", BEARER, b'{"seconds": 2, "door": "b2"}'),
    ("b1-entrance", BEARER, b"{not json"),
    ("b1-entrance", BEARER, b'{"seconds": "4"}'),
    ("b1-entrance", BEARER, b"[1, 2]"),
    ("b1-entrance", BEARER, b""),
    ("b1-entrance", {**BEARER, "Idempotency-Key": "k" * 201}, b'{"seconds": 99}'),
    ("b1-entrance", {}, b'{"seconds": 99}'),  # 401 before any 422
    ("b1-entrance", {"Authorization": "Bearer nope"}, None),
    ("b1-entrance", {"Authorization": "Basic abc"}, None),
    # the body is JSON only when declared so, as FastAPI decides it
    ("b1-entrance", {**BEARER, "Content-Type": "text/plain"}, b'{"seconds": 3}'),
    ("b1-entrance", {**BEARER, "Content-Type": ""}, b'{"seconds": 3}'),
    ("b1-entrance", {**BEARER, "Content-Type": "application/json; charset=utf-8"}, b"{}"),
    ("b1-entrance", {**BEARER, "Content-Type": "application/vnd.unlock+json"}, b"{}"),
    ("b1-entrance", {**BEARER, "Content-Type": "application/x-www-form-urlencoded"}, b"a=1"),
]


def answer(client: TestClient, door: str, headers: dict[str, str], body: bytes | None) -> Any:
    h = {"Content-Type": "application/json", **headers} if body is not None else headers
    if h.get("Content-Type") == "":
        del h["Content-Type"]  # none at all
    r = client.post(f"/api/v1/doors/{door}/unlock", headers=h, content=body)
    keep = {k: v for k, v in r.headers.items() if k.lower() in ("www-authenticate", "retry-after")}
    return r.status_code, json.loads(r.content), keep


@pytest.mark.parametrize(("door", "headers", "body"), CASES)
def test_fast_route_answers_like_the_fastapi_route(door, headers, body):
    (slow_app, slow_calls), (fast_app, fast_calls) = app(False), app(True)
    with TestClient(slow_app) as slow, TestClient(fast_app) as fast:
        expected = answer(slow, door, headers, body)
        got = answer(fast, door, headers, body)
    assert got == expected
    assert fast_calls.calls == slow_calls.calls


def test_the_fast_route_is_the_one_serving_and_the_schema_keeps_the_endpoint():
    a, _ = app(True)
    first = a.router.routes[0]
    assert getattr(first, "endpoint", None) is doors.unlock_route
    paths = a.openapi()["paths"]
    assert "post" in paths["/api/v1/doors/{door_id}/unlock"]
