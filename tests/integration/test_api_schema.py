"""Real answers of the REST API validate against the gateway's own ``/openapi.json``.

One gateway process fed through a real broker, with a door stub that acknowledges unlocks.
Each route is called for its success and for the errors it can be made to give here; every
answer's status must be declared for the route, and its body must validate against the
schema declared for that status. The validator below treats an object schema as closed: a
key the schema does not declare fails, so the schema describes every key the API sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from firmware_stubs.door import DoorController
from tests.integration.conftest import Publisher, wait_for
from tests.support.servers import GatewayProcess, Mosquitto

JWT_SECRET = "schema-test-resident-secret-0123456789abcdef"
DOOR_SECRET = "5a" * 32
REGISTRY = f"""
[[communities]]
id = "c1"
[[buildings]]
id = "b1"
community = "c1"
[[buildings]]
id = "b2"
community = "c1"
[[devices]]
id = "b1-entrance"
community = "c1"
class = "access"
building = "b1"
secret = "{DOOR_SECRET}"
[[devices]]
id = "b2-entrance"
community = "c1"
class = "access"
building = "b2"
secret = "{"6b" * 32}"
[[devices]]
id = "b1-side"
community = "c1"
class = "access"
building = "b1"
[[devices]]
id = "m-1"
community = "c1"
class = "meter"
building = "b1"
expect_every_s = 60
"""
COMMANDS = "\n[commands]\ntimeout_s = 2\nvalidity_s = 2\nburst = 100\n"
ANNOTATIONS = {"title", "description", "default", "examples"}


class SchemaMismatch(AssertionError):
    pass


def validate(value: Any, schema: dict[str, Any], spec: dict[str, Any], at: str = "$") -> None:
    """The JSON Schema keywords FastAPI and pydantic write; any other keyword fails."""
    unknown = (
        set(schema)
        - ANNOTATIONS
        - {
            "$ref",
            "type",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "anyOf",
            "enum",
            "const",
        }
    )
    if unknown:
        raise SchemaMismatch(f"{at}: keywords this validator does not know: {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        validate(value, spec["components"]["schemas"][name], spec, at)
    if "anyOf" in schema:
        problems = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, spec, at)
                break
            except SchemaMismatch as exc:
                problems.append(str(exc))
        else:
            raise SchemaMismatch(f"{at}: no option of anyOf fits: {problems}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaMismatch(f"{at}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        raise SchemaMismatch(f"{at}: {value!r} is not {schema['const']!r}")
    kind = schema.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if kind is not None and not checks[kind](value):
        raise SchemaMismatch(f"{at}: {value!r} is not of type {kind}")
    if kind == "object":
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                raise SchemaMismatch(f"{at}: required key {key!r} missing")
        extra = schema.get("additionalProperties", not props)
        for key, item in value.items():
            if key in props:
                validate(item, props[key], spec, f"{at}.{key}")
            elif extra is False:
                raise SchemaMismatch(f"{at}: key {key!r} is not in the schema")
            elif isinstance(extra, dict):
                validate(item, extra, spec, f"{at}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            validate(item, schema.get("items", {}), spec, f"{at}[{i}]")


def test_the_validator_refuses_what_the_schema_does_not_allow():
    spec = {
        "components": {
            "schemas": {
                "P": {
                    "type": "object",
                    "properties": {"ts": {"type": "integer"}, "v": {"anyOf": [{"type": "number"}]}},
                    "required": ["ts"],
                }
            }
        }
    }
    page = {"type": "array", "items": {"$ref": "#/components/schemas/P"}}
    validate([{"ts": 1, "v": 2.5}, {"ts": 2}], page, spec)
    for bad in (
        [{"v": 1}],
        [{"ts": 1.5}],
        [{"ts": True}],
        [{"ts": 1, "x": 0}],
        [{"ts": 1, "v": "1"}],
    ):
        with pytest.raises(SchemaMismatch):
            validate(bad, page, spec)
    with pytest.raises(SchemaMismatch, match="does not know"):
        validate(1, {"type": "integer", "minimum": 0}, spec)


def resident(building: str) -> str:
    claims = {
        "sub": f"r-{building}",
        "community": "c1",
        "building": building,
        "unit": f"{building}-0101",
        "exp": int(time.time()) + 600,
        "aud": "courtyard-test",
        "iss": "resident-app",
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture
def gw(
    mosquitto: Mosquitto,
    gateway_factory: Callable[..., GatewayProcess],
    publisher: Publisher,
) -> Iterator[GatewayProcess]:
    gw = gateway_factory(mqtt_url=mosquitto.url, registry=REGISTRY, extra=COMMANDS)
    cfg = (gw.dir / "courtyard.toml").read_text()
    (gw.dir / "courtyard.toml").write_text(
        cfg.replace(
            "[auth]\n",
            f'[auth]\njwt_secret = "{JWT_SECRET}"\n'
            'jwt_audience = "courtyard-test"\njwt_issuer = "resident-app"\n',
        )
    )
    gw.start()
    door = DoorController(
        "b1-entrance",
        building="b1",
        secret=DOOR_SECRET,
        port=mosquitto.port,
        mean_access_s=1e9,
        mean_exit_s=1e9,
        mean_intercom_s=1e9,
    )
    door.start()
    try:
        assert door.wait_connected(10)
        now = int(time.time() * 1000)
        for i in range(20):
            publisher.publish(
                "community/c1/meter/m-1/telemetry",
                json.dumps({"ts": now - 60_000 + i * 1000, "seq": i, "power_w": i % 2 or 1.5}),
            )
        publisher.publish(
            "community/c1/meter/m-1/event",
            json.dumps({"event": "tamper", "reason": "cover_open"}),  # no ts: ts_flag missing
        )
        wait_for(
            lambda: (
                get(gw, "/api/v1/devices/b1-entrance").json()["online"] is True
                and any(t["rule"] == "tamper" for t in get(gw, "/api/v1/tickets").json()["tickets"])
                and len(get(gw, "/api/v1/devices/m-1/readings?field=power_w").json()["points"])
                == 20
            ),
            20,
            "door online, a tamper ticket, the readings stored",
        )
        yield gw
    finally:
        door.stop()


def get(gw: GatewayProcess, path: str, token: str | None = "key", **kw: Any) -> httpx.Response:
    return call(gw, "GET", path, token, **kw)


def call(
    gw: GatewayProcess, method: str, path: str, token: str | None = "key", **kw: Any
) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {gw.key if token == 'key' else token}"
    return httpx.request(method, f"{gw.api}{path}", headers=headers, timeout=15, **kw)


def test_every_answer_validates_against_the_openapi_schema(gw: GatewayProcess) -> None:
    spec = get(gw, "/openapi.json", token=None).json()
    (alert,) = [
        a["id"] for a in get(gw, "/api/v1/alerts").json()["alerts"] if a["rule"] == "tamper"
    ]
    (ticket,) = [
        t["id"] for t in get(gw, "/api/v1/tickets").json()["tickets"] if t["rule"] == "tamper"
    ]
    b1, b2 = resident("b1"), resident("b2")
    unlock = "/api/v1/doors/{door_id}/unlock"
    command = "/api/v1/devices/{device_id}/commands"
    json_body = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        # (method, route template, path, request)
        ("GET", "/api/v1/alerts", "/api/v1/alerts", {}),
        ("GET", "/api/v1/alerts", "/api/v1/alerts", {"token": None}),
        ("GET", "/api/v1/alerts", "/api/v1/alerts", {"token": b1}),
        ("POST", "/api/v1/alerts/{alert_id}/ack", f"/api/v1/alerts/{alert}/ack", {}),
        ("POST", "/api/v1/alerts/{alert_id}/ack", "/api/v1/alerts/999999/ack", {}),
        ("POST", "/api/v1/alerts/{alert_id}/ack", "/api/v1/alerts/x/ack", {}),
        ("GET", "/api/v1/alerts", "/api/v1/alerts?status=acknowledged", {}),
        ("GET", "/api/v1/tickets", "/api/v1/tickets", {}),
        ("POST", "/api/v1/tickets/{ticket_id}/resolve", f"/api/v1/tickets/{ticket}/resolve", {}),
        ("POST", "/api/v1/tickets/{ticket_id}/resolve", "/api/v1/tickets/999999/resolve", {}),
        ("GET", "/api/v1/tickets", "/api/v1/tickets?status=resolved", {}),
        ("GET", "/api/v1/tickets", "/api/v1/tickets?status=bogus", {}),
        ("GET", "/api/v1/devices", "/api/v1/devices", {}),
        ("GET", "/api/v1/devices", "/api/v1/devices?online=maybe", {}),
        ("GET", "/api/v1/devices/{device_id}", "/api/v1/devices/m-1", {}),
        ("GET", "/api/v1/devices/{device_id}", "/api/v1/devices/b1-side", {}),
        ("GET", "/api/v1/devices/{device_id}", "/api/v1/devices/nope", {}),
        ("GET", "/api/v1/devices/{device_id}", "/api/v1/devices/m-1", {"token": b1}),
        ("GET", "/api/v1/devices/{device_id}/readings", "/api/v1/devices/m-1/readings", {}),
        (
            "GET",
            "/api/v1/devices/{device_id}/readings",
            "/api/v1/devices/m-1/readings?field=power_w",
            {},
        ),
        (
            "GET",
            "/api/v1/devices/{device_id}/readings",
            "/api/v1/devices/m-1/readings?field=power_w&every=10s&limit=2",
            {},
        ),
        (
            "GET",
            "/api/v1/devices/{device_id}/readings",
            "/api/v1/devices/m-1/readings?field=power_w&since=yesterday",
            {},
        ),
        (
            "GET",
            "/api/v1/devices/{device_id}/readings",
            "/api/v1/devices/nope/readings?field=power_w",
            {},
        ),
        ("GET", "/api/v1/events", "/api/v1/events", {}),
        ("GET", "/api/v1/events", "/api/v1/events?device=m-1&limit=1", {}),
        ("GET", "/api/v1/events", "/api/v1/events?since=soon", {}),
        ("GET", "/api/v1/events", "/api/v1/events?device=nope", {}),
        ("POST", unlock, "/api/v1/doors/b1-entrance/unlock", {"token": b1}),
        (
            "POST",
            unlock,
            "/api/v1/doors/b1-entrance/unlock",
            {"token": b1, "headers": {**json_body, "Idempotency-Key": "k1"}, "content": b"{}"},
        ),
        (
            "POST",
            unlock,
            "/api/v1/doors/b1-entrance/unlock",
            {
                "token": b1,
                "headers": {**json_body, "Idempotency-Key": "k1"},
                "content": b'{"seconds": 3}',
            },
        ),
        ("POST", unlock, "/api/v1/doors/b1-entrance/unlock", {"token": None}),
        ("POST", unlock, "/api/v1/doors/b1-entrance/unlock", {"token": b2}),
        ("POST", unlock, "/api/v1/doors/nope/unlock", {"token": b1}),
        ("POST", unlock, "/api/v1/doors/b1-side/unlock", {"token": b1}),
        ("POST", unlock, "/api/v1/doors/b2-entrance/unlock", {"token": b2}),
        (
            "POST",
            unlock,
            "/api/v1/doors/b1-entrance/unlock",
            {"token": b1, "headers": json_body, "content": b'{"seconds": 99, "x": 1}'},
        ),
        (
            "POST",
            unlock,
            "/api/v1/doors/b1-entrance/unlock",
            {"token": b1, "headers": json_body, "content": b"{not json"},
        ),
        (
            "POST",
            command,
            "/api/v1/devices/b1-entrance/commands",
            {"json": {"action": "unlock", "args": {"seconds": 2}}},
        ),
        (
            "POST",
            command,
            "/api/v1/devices/b1-entrance/commands",
            {"json": {"action": "open_barrier", "args": {}}},
        ),
        (
            "POST",
            command,
            "/api/v1/devices/b1-entrance/commands",
            {"token": b1, "json": {"action": "unlock"}},
        ),
        ("GET", "/api/v1/audit", "/api/v1/audit", {}),
        ("GET", "/api/v1/audit", "/api/v1/audit?outcome=late_ok", {}),
        ("GET", "/api/v1/audit", "/api/v1/audit?outcome=bogus", {}),
    ]
    seen: dict[str, set[int]] = {}
    for method, route, path, request in cases:
        r = call(gw, method, path, **request)
        operation = spec["paths"][route][method.lower()]
        declared = operation["responses"]
        assert str(r.status_code) in declared, (path, r.status_code, r.text)
        schema = declared[str(r.status_code)]["content"]["application/json"]["schema"]
        try:
            validate(r.json(), schema, spec)
        except SchemaMismatch as exc:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {exc}\n{r.text}") from None
        seen.setdefault(f"{method} {route}", set()).add(r.status_code)
        # a named model, not the bare "object" a route returning a dict would get
        assert "$ref" in declared["200"]["content"]["application/json"]["schema"], route

    # the answers above cover what each route gives here, optional keys included
    assert seen == {
        "GET /api/v1/alerts": {200, 401, 403},
        "POST /api/v1/alerts/{alert_id}/ack": {200, 404, 422},
        "GET /api/v1/tickets": {200, 422},
        "POST /api/v1/tickets/{ticket_id}/resolve": {200, 404},
        "GET /api/v1/devices": {200, 422},
        "GET /api/v1/devices/{device_id}": {200, 403, 404},
        "GET /api/v1/devices/{device_id}/readings": {200, 400, 404},
        "GET /api/v1/events": {200, 400, 404},
        f"POST {unlock}": {200, 401, 403, 404, 409, 422, 503},
        f"POST {command}": {200, 403, 422},
        "GET /api/v1/audit": {200, 400},
    }
    acked = get(gw, "/api/v1/alerts?status=acknowledged").json()["alerts"][0]
    assert {"acknowledged_at", "acknowledged_by"} <= acked.keys() and "cleared_at" not in acked
    resolved = get(gw, "/api/v1/tickets?status=resolved").json()["tickets"][0]
    assert {"resolved_at", "resolution"} <= resolved.keys()
    (tamper,) = get(gw, "/api/v1/events?device=m-1").json()["events"]
    assert tamper["ts_flag"] == "missing"
    values = [
        p["value"] for p in get(gw, "/api/v1/devices/m-1/readings?field=power_w").json()["points"]
    ]
    assert values == [i % 2 or 1.5 for i in range(20)]
