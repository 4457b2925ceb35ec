"""Signed commands: signing against the device's own verifier, rate limits, the attempt
pipeline with a fake broker, idempotency, ack correlation and security events."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import closing
from typing import Any

import pytest

from devices.model import Decoded
from firmware_stubs import signing as device_side
from gateway.audit import AuditLog, Outcome
from gateway.auth import Principal
from gateway.command_metrics import command_metrics
from gateway.command_signing import build_signed, canonical_json, sign
from gateway.commands import SECURITY_ROWS_PER_MINUTE, CommandService, may_execute_until
from gateway.config import CommandSettings, RegistryDevice
from gateway.mqtt.errors import NotConnected
from gateway.ratelimit import TokenBuckets
from gateway.store.journal import Accepted, DeviceState

SECRET = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
NOW = 1_763_700_000_000


# -- signing, checked by the device's independent implementation -------------------------------


def command(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """A signed command (what ``build_signed`` returns besides its bytes)."""
    return build_signed(*args, **kwargs)[0]


@pytest.mark.parametrize(
    "args",
    [{"seconds": 5}, {"lane": "in-1"}, {"compartment": 7}, {"x": 0.1, "y": 1e-7, "z": "Zürich 门"}],
)
def test_signature_verifies_on_the_device_side(args):
    cmd = command("gate-north", "unlock", args, SECRET, issued_at_ms=NOW, validity_ms=5000)
    wire = json.loads(canonical_json(cmd))
    assert device_side.verify(wire, "gate-north", SECRET, NOW + 1000, NOW - 1, set()) is None
    assert device_side.sign_command(wire, SECRET) == cmd["sig"]


def test_canonical_json_is_what_the_contract_says():
    assert canonical_json({"b": 1, "a": "é", "c": {"z": 0.5, "y": [1, 2]}}) == (
        '{"a":"é","b":1,"c":{"y":[1,2],"z":0.5}}'.encode()
    )
    assert "=" not in sign({"a": 1}, SECRET)


def test_any_change_breaks_the_signature_and_the_device_sees_it():
    cmd = command(
        "gate-north", "unlock", {"seconds": 5}, SECRET, issued_at_ms=NOW, validity_ms=5000
    )
    for key, value in (
        ("device", "gate-south"),
        ("expires_at", NOW + 99_000),
        ("args", {"seconds": 30}),
    ):
        tampered = {**cmd, key: value}
        assert (
            device_side.verify(tampered, "gate-north", SECRET, NOW, NOW - 1, set())
            == "bad_signature"
        )
    other = command("gate-north", "unlock", {}, "ff" * 32, issued_at_ms=NOW, validity_ms=5000)
    assert device_side.verify(other, "gate-north", SECRET, NOW, NOW - 1, set()) == "bad_signature"


def test_ids_are_unique():
    ids = {
        command("d", "unlock", {}, SECRET, issued_at_ms=NOW, validity_ms=1)["id"]
        for _ in range(1000)
    }
    assert len(ids) == 1000


# -- token buckets ------------------------------------------------------------------------------


def test_token_bucket_burst_then_refill():
    clock = [100.0]
    buckets = TokenBuckets(per_minute=6, burst=3, monotonic=lambda: clock[0])
    assert [buckets.take("r") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("r")
    assert wait == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert buckets.take("other") == 0.0  # per key
    clock[0] += 10.0
    assert buckets.take("r") == 0.0
    assert buckets.take("r") > 0


# -- the attempt pipeline ---------------------------------------------------------------------


class FakeBroker:
    """Stands in for the MQTT client; can answer like a device through ``service.on_commit``."""

    def __init__(self) -> None:
        self.connected = True
        self.published: list[dict[str, Any]] = []
        self.reply: dict[str, Any] | None = {"ok": True}
        self.service: CommandService | None = None
        self.fail = False

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        message_expiry: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the client's signature
    ) -> None:
        if self.fail:
            raise NotConnected("down")
        cmd = json.loads(payload)
        self.published.append(
            {"topic": topic, "cmd": cmd, "qos": qos, "retain": retain, "expiry": message_expiry}
        )
        if self.reply is not None and self.service is not None:
            st = self.service.devices[cmd["device"]]
            reply = {"id": cmd["id"], **self.reply}
            loop = asyncio.get_running_loop()
            loop.call_later(0.01, self.service.on_commit, [ack(st, reply)])


def ack(st: DeviceState, attrs: dict[str, Any]) -> Accepted:
    return Accepted(st, Decoded(st.device_class, st.device, "ack", NOW, attrs=attrs), NOW)


def door(
    id_: int,
    name: str,
    building: str = "",
    community: str = "c1",
    online: bool | None = True,
    cls: str = "access",
    registered: bool = True,
) -> DeviceState:
    return DeviceState(id_, name, community, cls, building, registered=registered, online=online)


@pytest.fixture
def world(tmp_path):
    devices = {
        d.device: d
        for d in (
            door(1, "b3-entrance", "b3"),
            door(2, "b5-entrance", "b5"),
            door(3, "gate-north"),
            door(4, "other-gate", community="c2"),
            door(5, "b3-dead", "b3", online=False),
            door(6, "b3-never", "b3", online=None),
            door(7, "stray-door", "b3", registered=False),
            door(8, "barrier-1", cls="parking"),
            door(9, "b3-nosecret", "b3"),
        )
    }
    registry = {
        name: RegistryDevice.model_validate(
            {
                "id": name,
                "community": st.community,
                "class": st.device_class,
                "building": st.building,
                "secret": "" if name == "b3-nosecret" else SECRET,
            }
        )
        for name, st in devices.items()
        if name != "stray-door"
    }
    log = AuditLog(str(tmp_path / "audit.db"))
    log.open()
    broker = FakeBroker()
    service = CommandService(
        CommandSettings(timeout_s=1, validity_s=1, rate_per_minute_resident=60, burst=5),
        prefix="community",
        devices=devices,
        registry=registry,
        audit=log,
        publisher=broker,
    )
    broker.service = service
    yield service, broker, log
    log.close()


RESIDENT = Principal("resident", "r-42", frozenset({"c1"}), building="b3", credential="jwt:t1")
PLATFORM = Principal("platform", "platform-key-0", None, credential="platform-key-0")


async def test_happy_path_publishes_a_signed_expiring_unretained_command(world):
    service, broker, log = world
    result = await service.execute(
        RESIDENT, "b3-entrance", "unlock", {"seconds": 5}, doors_only=True
    )
    assert result.outcome == Outcome.OK and result.command_id and result.latency_ms is not None
    (sent,) = broker.published
    assert sent["topic"] == "community/c1/access/b3-entrance/cmd"
    assert sent["qos"] == 1 and sent["retain"] is False and 0 < sent["expiry"] <= 1
    cmd = sent["cmd"]
    assert cmd["expires_at"] - cmd["issued_at"] == 1000
    assert device_side.verify(cmd, "b3-entrance", SECRET, cmd["issued_at"], 0, set()) is None
    (row,) = log.query().items
    assert row["outcome"] == "ok" and row["principal"] == "r-42" and row["credential"] == "jwt:t1"
    assert row["command_id"] == result.command_id and row["latency_ms"] == result.latency_ms


@pytest.mark.parametrize(
    ("device", "outcome", "reason"),
    [
        ("b5-entrance", Outcome.FORBIDDEN, "other_building"),
        ("nowhere", Outcome.NOT_FOUND, "no such door"),
        ("barrier-1", Outcome.NOT_FOUND, "no such door"),
        ("b3-dead", Outcome.OFFLINE, "device offline"),
        ("b3-never", Outcome.OFFLINE, "never seen"),
        ("stray-door", Outcome.NOT_COMMANDABLE, "discovered device: not in the registry"),
        ("b3-nosecret", Outcome.NOT_COMMANDABLE, "no command secret in the registry"),
    ],
)
async def test_refusals_send_nothing_and_are_audited(world, device, outcome, reason):
    service, broker, log = world
    result = await service.execute(RESIDENT, device, "unlock", {"seconds": 5}, doors_only=True)
    assert (result.outcome, result.reason) == (outcome, reason)
    assert broker.published == []
    (row,) = log.query(device=device).items
    assert row["outcome"] == outcome and row["reason"] == reason and row["principal"] == "r-42"


async def test_another_communitys_door_is_answered_as_an_unknown_one_and_audited(world):
    """A resident must not learn which door ids exist in other communities (the 403 for a
    real door against the 404 for a made-up one told them apart)."""
    service, broker, log = world
    real = await service.execute(RESIDENT, "other-gate", "unlock", {"seconds": 5}, doors_only=True)
    made_up = await service.execute(RESIDENT, "no-gate", "unlock", {"seconds": 5}, doors_only=True)
    assert (
        (real.outcome, real.reason)
        == (made_up.outcome, made_up.reason)
        == (
            Outcome.NOT_FOUND,
            "no such door",
        )
    )
    assert broker.published == []
    (row,) = log.query(device="other-gate").items
    assert (
        row["outcome"] == Outcome.NOT_FOUND and row["reason"] == "outside the caller's communities"
    )


async def test_an_idempotency_key_never_crosses_communities(world):
    """Two communities' residents with the same ``sub`` are two people: the second gets no
    cached answer of the first's, but an authorisation check and an audit row of its own."""
    service, broker, log = world
    mine = await service.execute(
        RESIDENT, "gate-north", "unlock", {"seconds": 5}, idempotency_key="same"
    )
    twin = Principal("resident", "r-42", frozenset({"c2"}), building="b3", credential="jwt:t9")
    theirs = await service.execute(
        twin, "gate-north", "unlock", {"seconds": 5}, idempotency_key="same"
    )
    assert mine.outcome == Outcome.OK and theirs.outcome == Outcome.NOT_FOUND
    assert theirs.command_id != mine.command_id and len(broker.published) == 1
    rows = log.query(device="gate-north").items
    assert sorted(r["credential"] for r in rows) == ["jwt:t1", "jwt:t9"]


async def test_a_resident_rate_limit_is_per_community(world):
    service, _, _ = world
    for _ in range(5):
        assert (await service.execute(RESIDENT, "gate-north", "unlock", {"seconds": 5})).outcome
    limited = await service.execute(RESIDENT, "gate-north", "unlock", {"seconds": 5})
    assert limited.outcome == Outcome.RATE_LIMITED
    twin = Principal("resident", "r-42", frozenset({"c2"}), building="")
    other = await service.execute(twin, "other-gate", "unlock", {"seconds": 5})
    assert other.outcome != Outcome.RATE_LIMITED  # not the c1 resident's bucket


async def test_device_refusal_and_timeout_and_broker_failure(world):
    service, broker, log = world
    broker.reply = {"ok": False, "error": "expired"}
    refused = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert (refused.outcome, refused.reason) == (Outcome.REFUSED, "expired")
    broker.reply = None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    timed_out = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert timed_out.outcome == Outcome.TIMEOUT and 0.9 <= loop.time() - t0 < 2.0
    assert service.pending == 0
    broker.fail = True
    failed = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert failed.outcome == Outcome.FAILED
    assert [r["outcome"] for r in log.query().items] == [
        Outcome.FAILED,
        Outcome.TIMEOUT,
        Outcome.REFUSED,
    ]


async def test_an_ack_from_another_device_does_not_confirm(world):
    service, broker, _ = world
    broker.reply = None
    task = asyncio.create_task(service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3}))
    for _ in range(100):
        if broker.published:
            break
        await asyncio.sleep(0.001)
    cmd_id = broker.published[0]["cmd"]["id"]
    service.on_commit([ack(service.devices["b3-entrance"], {"id": cmd_id, "ok": True})])
    result = await task
    assert result.outcome == Outcome.TIMEOUT


async def test_platform_commands_validate_args_with_the_profile(world):
    service, broker, _ = world
    bad = await service.execute(PLATFORM, "barrier-1", "open_barrier", {"lane": "in", "x": 1})
    assert bad.outcome == Outcome.BAD_REQUEST and "bad_args" in bad.reason
    unknown = await service.execute(PLATFORM, "barrier-1", "unlock", {"seconds": 5})
    assert unknown.outcome == Outcome.BAD_REQUEST and "unknown_action" in unknown.reason
    ok = await service.execute(PLATFORM, "barrier-1", "open_barrier", {"lane": "in"})
    assert ok.outcome == Outcome.OK
    assert broker.published[-1]["cmd"]["args"] == {"lane": "in"}
    scoped = Principal("platform", "platform-key-1", frozenset({"c2"}))
    hidden = await service.execute(scoped, "barrier-1", "open_barrier", {"lane": "in"})
    assert hidden.outcome == Outcome.NOT_FOUND


async def test_idempotency_key_sends_one_command_and_repeats_the_answer(world):
    service, broker, log = world
    first, second = await asyncio.gather(
        service.execute(RESIDENT, "b3-entrance", "unlock", {"seconds": 5}, idempotency_key="k1"),
        service.execute(RESIDENT, "b3-entrance", "unlock", {"seconds": 5}, idempotency_key="k1"),
    )
    third = await service.execute(
        RESIDENT, "b3-entrance", "unlock", {"seconds": 5}, idempotency_key="k1"
    )
    assert first == second == third and first.outcome == Outcome.OK
    assert len(broker.published) == 1 and len(log.query().items) == 1
    other = Principal("resident", "r-43", frozenset({"c1"}), building="b3")
    theirs = await service.execute(
        other, "b3-entrance", "unlock", {"seconds": 5}, idempotency_key="k1"
    )
    assert theirs.command_id != first.command_id  # keys are per principal
    reused = await service.execute(
        RESIDENT, "gate-north", "unlock", {"seconds": 5}, idempotency_key="k1"
    )
    assert reused.outcome == Outcome.BAD_REQUEST
    assert len(broker.published) == 2


async def test_rate_limits_per_resident_and_per_door(world):
    service, _, log = world
    results = [
        (await service.execute(RESIDENT, "b3-entrance", "unlock", {"seconds": 5})).outcome
        for _ in range(7)
    ]
    assert results == [Outcome.OK] * 5 + [Outcome.RATE_LIMITED] * 2
    limited = await service.execute(RESIDENT, "gate-north", "unlock", {"seconds": 5})
    assert (
        limited.outcome == Outcome.RATE_LIMITED
        and limited.retry_after_s
        and limited.retry_after_s > 0
    )
    # other callers on the same door each have their own bucket: nobody is locked out
    outcomes = [
        (
            await service.execute(
                Principal("platform", f"k{i}", None), "gate-north", "unlock", {"seconds": 5}
            )
        ).outcome
        for i in range(6)
    ]
    assert outcomes == [Outcome.OK] * 6
    assert log.query(outcome=Outcome.RATE_LIMITED).items


async def test_three_residents_hammering_a_gate_lock_nobody_else_out_and_raise_an_alert(world):
    """The door-wide limit is an alert, not a lockout: each hammering resident is limited on
    their own, a fourth resident still opens the gate, and the flood is reported once per
    excess attempt to the fault listeners (the gateway raises ``door_attempts_flood``)."""
    service, _, _ = world
    faults: list[tuple[str, str]] = []
    service.fault_listeners.append(lambda st, rule, _details: faults.append((st.device, rule)))
    service.per_door = type(service.per_door)(6, 6)  # a small door-wide alert rate for the test
    hammering = [
        Principal("resident", f"r-{i}", frozenset({"c1"}), building="b3") for i in range(3)
    ]
    for p in hammering:
        outcomes = [
            (await service.execute(p, "gate-north", "unlock", {"seconds": 5})).outcome
            for _ in range(7)
        ]
        assert outcomes[:5] == [Outcome.OK] * 5 and outcomes[5:] == [Outcome.RATE_LIMITED] * 2
    neighbour = Principal("resident", "r-77", frozenset({"c1"}), building="b3")
    ok = await service.execute(neighbour, "gate-north", "unlock", {"seconds": 5})
    assert ok.outcome == Outcome.OK
    assert faults and set(faults) == {("gate-north", "door_attempts_flood")}
    assert service.door_floods == len(faults)


async def test_a_device_flooding_security_events_is_counted_not_audited_beyond_its_rate(world):
    """A device (or whoever holds its account) cannot flood the audit trail: beyond its rate
    its security events are counted, not audited (issue 13, finding 14); another device's
    events still are."""
    service, _, log = world
    flooder, other = service.devices["b3-entrance"], service.devices["gate-north"]

    def tamper(st: DeviceState, i: int) -> Accepted:
        attrs = {"reason": "replayed", "command_id": f"c-{i}"}
        return Accepted(st, Decoded("access", st.device, "event", NOW, attrs=attrs,
                                    event="tamper"), NOW)  # fmt: skip

    service.on_commit([tamper(flooder, i) for i in range(500)])
    service.on_commit([tamper(other, 1)])
    await log.flushed()
    rows = log.query(outcome=Outcome.SECURITY, limit=1000).items
    per_device = {
        d: sum(1 for r in rows if r["device"] == d) for d in (flooder.device, other.device)
    }
    assert per_device == {flooder.device: SECURITY_ROWS_PER_MINUTE, other.device: 1}
    assert service.security_suppressed["replayed"] == 500 - SECURITY_ROWS_PER_MINUTE
    assert 'courtyard_security_events_suppressed_total{reason="replayed"} 480' in command_metrics(
        service
    )


async def test_tamper_events_and_foreign_refusals_are_security_rows(world):
    service, _, log = world
    st = service.devices["b3-entrance"]
    service.on_commit(
        [
            Accepted(
                st,
                Decoded(
                    "access",
                    st.device,
                    "event",
                    NOW,
                    event="tamper",
                    attrs={"reason": "replayed", "command_id": "c-1"},
                ),
                NOW,
            ),
            Accepted(
                st,
                Decoded(
                    "access",
                    st.device,
                    "event",
                    NOW,
                    event="tamper",
                    attrs={"reason": "enclosure_opened"},
                ),
                NOW,
            ),
            ack(st, {"id": "c-2", "ok": False, "error": "expired"}),
            ack(st, {"id": "c-1", "ok": False, "error": "replayed"}),  # counted by its tamper event
        ]
    )
    rows = log.query(outcome=Outcome.SECURITY).items
    assert [(r["reason"], r["command_id"]) for r in rows] == [
        ("expired", "c-2"),
        ("replayed", "c-1"),
    ]
    assert service.security_events == {"replayed": 1, "expired": 1}
    text = "\n".join(command_metrics(service))
    assert 'courtyard_security_events_total{reason="replayed"} 1' in text


@pytest.mark.parametrize(
    "args",
    [{}, {"seconds": 3}, {"compartment": "A-07", "note": "é ü 门"}, {"x": [1, 2.5, None, True]}],
)
def test_published_bytes_are_the_canonical_json_of_the_signed_command(args):
    cmd, payload = build_signed(
        "b1-entrance", "unlock", args, SECRET, issued_at_ms=NOW, validity_ms=5000
    )
    assert payload == canonical_json(cmd)
    assert cmd["sig"] == sign(cmd, SECRET)


# -- the audit's grouped writes ------------------------------------------------------------------


def _on_disk(log: AuditLog) -> list[tuple[Any, ...]]:
    """The rows another connection sees: what is really written."""
    with closing(sqlite3.connect(log.path)) as other:
        return other.execute("SELECT id, outcome, command_id FROM audit ORDER BY id").fetchall()


async def test_the_pending_row_is_on_disk_before_the_command_leaves(world):
    service, broker, log = world
    seen: list[list[tuple[Any, ...]]] = []
    publish = broker.publish

    async def checking(topic: str, payload: bytes, **kw: Any) -> None:
        seen.append(_on_disk(log))
        await publish(topic, payload, **kw)

    broker.publish = checking  # type: ignore[method-assign]
    result = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert result.outcome == Outcome.OK
    ((_, outcome, command_id),) = seen[0]
    assert (outcome, command_id) == (Outcome.PENDING, result.command_id)
    # and the outcome is on disk before the answer
    assert _on_disk(log)[0][1:] == (Outcome.OK, result.command_id)


async def test_concurrent_attempts_share_one_transaction_per_loop_turn(world):
    service, broker, log = world
    commits: list[str] = []
    log.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    at_publish: list[int] = []
    publish = broker.publish

    async def counting(topic: str, payload: bytes, **kw: Any) -> None:
        at_publish.append(len(commits))
        await publish(topic, payload, **kw)

    broker.publish = counting  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 1}) for _ in range(5))
    )
    assert all(r.outcome == Outcome.OK for r in results)
    assert at_publish == [1] * 5  # the five pending rows went in one transaction
    assert 2 <= len(commits) <= 6  # the outcomes: grouped as their acks arrive together
    assert [row[1] for row in _on_disk(log)] == [Outcome.OK] * 5


async def test_a_failed_audit_write_sends_nothing_and_raises(world):
    service, broker, log = world
    log.conn.execute("DROP TABLE audit")  # every write now fails
    with pytest.raises(sqlite3.OperationalError):
        await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert broker.published == []
    assert service.pending == 0


def test_ids_continue_after_a_restart(tmp_path):
    path = str(tmp_path / "audit.db")
    row = {"principal": "p", "principal_kind": "platform", "credential": "", "device": "d"}
    first = AuditLog(path)
    first.open()
    ids = [first.record(**row, action="unlock", outcome=Outcome.OK) for _ in range(3)]
    first.close()
    again = AuditLog(path)
    again.open()
    assert again.record(**row, action="unlock", outcome=Outcome.OK) == ids[-1] + 1 == 4
    assert [r["id"] for r in again.query().items] == [4, 3, 2, 1]
    again.close()


# -- after a timeout: what the device may still do, and what it did ------------------------------


async def test_a_timeout_is_answered_no_earlier_than_expires_at(world):
    """The wait is measured from the command's issue, not from the request: an attempt slow
    to reach the signing (a busy loop) must not answer before the command expired."""
    service, broker, log = world
    broker.reply = None

    class SlowBroker:
        publish = broker.publish

        @property
        def connected(self) -> bool:
            time.sleep(0.3)  # the loop is busy between the request and the signing
            return broker.connected

    slow = CommandService(
        CommandSettings(timeout_s=1.5, validity_s=1.5),
        prefix="community",
        devices=service.devices,
        registry=service.registry,
        audit=log,
        publisher=SlowBroker(),
    )
    result = await slow.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    answered_ms = time.time_ns() // 1_000_000
    assert result.outcome == Outcome.TIMEOUT
    (sent,) = broker.published
    assert answered_ms >= sent["cmd"]["expires_at"], answered_ms - sent["cmd"]["expires_at"]


async def test_every_command_says_rule_2_and_the_timeout_says_what_may_still_happen(world):
    service, broker, _ = world
    broker.reply = None
    result = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    (sent,) = broker.published
    assert sent["cmd"]["rule"] == 2
    expires = sent["cmd"]["expires_at"]
    # registered without command_rule: firmware of rule 1, 30 s past expires_at by a clock
    # that may itself run 30 s behind
    assert (result.outcome, result.expires_at_ms, result.command_rule) == (
        Outcome.TIMEOUT,
        expires,
        1,
    )
    assert result.may_execute_until_ms == expires + 60_000
    assert may_execute_until(expires, 2) == expires + 30_000
    # refusals and confirmed answers say nothing of the kind
    broker.reply = {"ok": False, "error": "busy"}
    refused = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert refused.outcome == Outcome.REFUSED and refused.may_execute_until_ms is None
    broker.reply = {"ok": True}
    ok = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert ok.outcome == Outcome.OK and ok.may_execute_until_ms is None


async def test_a_late_ok_turns_the_timeout_into_late_ok_with_a_security_row_and_an_alert(world):
    service, broker, log = world
    heard: list[tuple[str, dict[str, Any]]] = []
    service.fault_listeners.append(
        lambda st, rule, details: heard.append((st.device, {"rule": rule, **details}))
    )
    broker.reply = None
    result = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert result.outcome == Outcome.TIMEOUT
    st = service.devices["gate-north"]
    acked_at = result.expires_at_ms + 9_000
    late = ack(st, {"id": result.command_id, "ok": True})
    service.on_commit([Accepted(late.device, late.message, acked_at)])
    await log.flushed()
    rows = {r["outcome"]: r for r in log.query(device="gate-north").items}
    assert set(rows) == {Outcome.LATE_OK, Outcome.SECURITY}
    row = rows[Outcome.LATE_OK]
    assert row["command_id"] == result.command_id and row["latency_ms"] == result.latency_ms
    assert row["reason"].startswith("no ack from the device in time; the device executed it")
    assert "+9.0 s" in row["reason"]
    security = rows[Outcome.SECURITY]
    assert (security["reason"], security["command_id"]) == (Outcome.LATE_OK, result.command_id)
    assert heard == [
        (
            "gate-north",
            {
                "rule": "command_late_ok",
                "command_id": result.command_id,
                "action": "unlock",
                "answered": Outcome.TIMEOUT,
                "expires_at": result.expires_at_ms,
                "acked_at": acked_at,
                "audit_id": row["id"],
            },
        )
    ]
    assert 'courtyard_security_events_total{reason="late_ok"} 1' in "\n".join(
        command_metrics(service)
    )
    # the same ack again (a redelivery) changes nothing more
    service.on_commit([late])
    assert len(heard) == 1 and len(log.query(device="gate-north").items) == 2


async def test_a_late_refusal_of_our_own_command_is_noted_not_a_security_event(world):
    service, broker, log = world
    broker.reply = None
    result = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    st = service.devices["gate-north"]
    service.on_commit([ack(st, {"id": result.command_id, "ok": False, "error": "expired"})])
    await log.flushed()
    (row,) = log.query(device="gate-north").items
    assert row["outcome"] == Outcome.TIMEOUT
    assert "the device refused it later (expired" in row["reason"]
    assert service.security_events == {}


async def test_a_late_ack_from_another_device_amends_nothing(world):
    service, broker, log = world
    broker.reply = None
    result = await service.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    other = service.devices["b3-entrance"]
    service.on_commit([ack(other, {"id": result.command_id, "ok": True})])
    await log.flushed()
    (row,) = log.query(device="gate-north").items
    assert row["outcome"] == Outcome.TIMEOUT
    # the right device's ack still counts afterwards
    st = service.devices["gate-north"]
    service.on_commit([ack(st, {"id": result.command_id, "ok": True})])
    await log.flushed()
    assert log.query(device="gate-north", outcome=Outcome.LATE_OK).items


async def test_a_registered_rule_2_device_may_execute_only_while_its_clock_lags(world, tmp_path):
    service, broker, log = world
    registry = dict(service.registry)
    registry["gate-north"] = RegistryDevice.model_validate(
        {
            "id": "gate-north",
            "community": "c1",
            "class": "access",
            "secret": SECRET,
            "command_rule": 2,
        }
    )
    broker.reply = None
    v2 = CommandService(
        CommandSettings(timeout_s=1, validity_s=1),
        prefix="community",
        devices=service.devices,
        registry=registry,
        audit=log,
        publisher=broker,
    )
    result = await v2.execute(PLATFORM, "gate-north", "unlock", {"seconds": 3})
    assert result.command_rule == 2
    assert result.may_execute_until_ms == result.expires_at_ms + 30_000


def test_outcome_values_are_the_stored_and_answered_strings():
    # stored in the audit table and returned by the API: a renamed value breaks both
    assert sorted(Outcome) == [
        "bad_request",
        "failed",
        "forbidden",
        "late_ok",
        "not_commandable",
        "not_found",
        "offline",
        "ok",
        "pending",
        "rate_limited",
        "refused",
        "security",
        "timeout",
    ]
    assert all(type(o.value) is str and str(o) == o.value for o in Outcome)
