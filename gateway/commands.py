"""Signed commands to devices (CONTRACT.md section 3), confirmed by the device's ack.

``CommandService.execute`` runs one attempt end to end: rate limits, lookup, authorisation on
the object, audit (before anything leaves), signing, publish (QoS 1, never retained, MQTT 5
message expiry equal to the remaining validity), then the wait for the correlated ``ack``; the
answer is a :class:`Result` whose ``outcome`` the API maps to an HTTP status.

Acks reach :meth:`CommandService.on_commit`, an ingest listener called after each group commit:
an ack resolves the waiting attempt by command id (and device). ``tamper`` events with reason
``bad_signature``/``replayed``, and refusals of commands this gateway is not waiting for, are
recorded as security rows in the audit log.

The deadline: the wait for the ack lasts until the command's ``expires_at`` has passed on the
gateway's clock, and the broker drops the message when its expiry (rounded down) passes. A
command already handed to the device's connection (a stalled process, a full socket) can still
reach it later: a device implementing command rule 2 (``"rule": 2`` in every command) refuses it
once its own clock passes ``expires_at``; older firmware allows 30 s of clock skew past it. So a
timed-out answer says until when the device may still execute it (:attr:`Result.
may_execute_until_ms`), and a late ``ok: true`` for such a command turns its audit row into
``late_ok``, records a security event and tells the ``fault_listeners`` (an alert).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devices.adapters.commands import CommandPlan
from devices.model import Rejected
from devices.profiles import PROFILES
from gateway.adapters.commander import AdapterCommander
from gateway.audit import AuditLog, Outcome
from gateway.auth import Principal, may_operate
from gateway.command_signing import COMMAND_RULE, build_signed, canonical_json
from gateway.config import CommandSettings, RegistryDevice
from gateway.mqtt import MqttError
from gateway.ratelimit import TokenBuckets
from gateway.store.journal import Accepted, DeviceState

log = logging.getLogger(__name__)

TAMPER_REASONS = frozenset({"bad_signature", "replayed"})
REFUSALS = frozenset({"bad_signature", "wrong_device", "expired", "replayed"})
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 150, 250, 500, 1000, 2500, 5000)
MAX_IDEMPOTENCY_KEYS = 10_000
EXPIRY_MARGIN_S = 0.05
CLOCK_SKEW_MS = 30_000  # CONTRACT.md section 3: the clock skew a device allows
LATE_KEEP_MS = 3_600_000  # a timed-out command is recognised this long after it expired
MAX_LATE = 10_000  # timed-out commands remembered at most (the oldest are forgotten)


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to one attempt; ``outcome`` is what the audit row says."""

    outcome: Outcome
    reason: str = ""
    command_id: str = ""
    latency_ms: float | None = None
    retry_after_s: float | None = None
    expires_at_ms: int | None = None
    may_execute_until_ms: int | None = None
    """Set when the device may still execute the command although the answer is not ``ok``:
    the last instant (the gateway's clock, epoch ms) it can, under the contract's 30 s bound on
    clock skew."""
    command_rule: int | None = None
    """The command rule the device's firmware implements (registry ``command_rule``)."""


@dataclass(slots=True)
class _Waiter:
    device: str
    future: asyncio.Future[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Late:
    """A command answered ``timeout`` (or ``failed`` after it was handed to the broker) that
    the device may still execute: what its audit row says, to amend it."""

    device: str
    action: str
    row_id: int
    outcome: Outcome
    reason: str
    latency_ms: float
    expires_at_ms: int
    may_execute_until_ms: int


FaultListener = Callable[[DeviceState, str, dict[str, Any]], None]
"""``(device, rule, details)``: something about commands that an operator must see as an
alert: ``command_late_ok``, ``door_attempts_flood``."""


@dataclass(slots=True)
class _Idem:
    fingerprint: bytes
    task: asyncio.Task[Result]
    expires: float


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        message_expiry: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None: ...


def _identity(principal: Principal) -> tuple[str, ...]:
    """Who a caller is for idempotency keys and rate limits: a resident's ``sub`` is unique
    only within its community (two communities' identity providers may reuse one)."""
    scope = "*" if principal.communities is None else ",".join(sorted(principal.communities))
    return (principal.kind, scope, principal.building, principal.unit, principal.name)


SECURITY_ROWS_PER_MINUTE = 20
"""Audit rows per device per minute for the security events it reports; the excess is
counted (``courtyard_security_events_suppressed_total``)."""


class CommandService:
    """Authorised, rate-limited, audited, signed commands with confirmed outcomes."""

    def __init__(
        self,
        settings: CommandSettings,
        *,
        prefix: str,
        devices: Mapping[str, DeviceState],
        registry: Mapping[str, RegistryDevice],
        audit: AuditLog,
        publisher: Publisher,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
        adapters: AdapterCommander | None = None,
    ) -> None:
        self.settings = settings
        self.adapters = adapters  # devices commanded through their adapter (CONTRACT.md 7.4)
        self.prefix = prefix
        self.devices = devices
        self.registry = registry
        self.audit = audit
        self._publisher = publisher
        self._now_ms = now_ms
        self._monotonic = monotonic
        self.per_resident = TokenBuckets(
            settings.rate_per_minute_resident, settings.burst, monotonic=monotonic
        )
        self.per_caller_door = TokenBuckets(
            settings.rate_per_minute_door, settings.burst, monotonic=monotonic
        )
        self.per_door = TokenBuckets(
            settings.alert_per_minute_door, settings.burst, monotonic=monotonic
        )
        self._pending: dict[str, _Waiter] = {}
        self._idempotent: OrderedDict[tuple[str, ...], _Idem] = OrderedDict()
        self._late: OrderedDict[str, _Late] = OrderedDict()
        self.fault_listeners: list[FaultListener] = []
        """Told of command faults: a device that executed a command after the gateway gave up
        on it, a door flooded with attempts (the gateway raises an alert of that rule)."""
        # metrics
        self.outcomes: Counter[Outcome] = Counter()
        self.security_events: Counter[str] = Counter()
        # what a device reports about commands is its word, not a fact: a device (or whoever
        # holds its account) must not flood the audit trail with security rows
        self.security_rows = TokenBuckets(
            SECURITY_ROWS_PER_MINUTE, SECURITY_ROWS_PER_MINUTE, monotonic=monotonic
        )
        self.security_suppressed: Counter[str] = Counter()
        self._flooding: set[str] = set()
        self.door_floods = 0
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- the attempt ----------------------------------------------------------------------

    async def execute(
        self,
        principal: Principal,
        device: str,
        action: str,
        args: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        doors_only: bool = False,
    ) -> Result:
        """Run one attempt; with an ``idempotency_key`` a repeat of the same request by the
        same principal gets the first attempt's answer and sends nothing."""
        run = self._attempt(principal, device, action, dict(args), doors_only)
        if not idempotency_key:
            return await self._answered(run)
        # keyed by who the caller is in full: a resident of c2 whose ``sub`` equals a c1
        # resident's must never receive that resident's answer
        key = (*_identity(principal), idempotency_key[:200])
        fingerprint = canonical_json([device, action, dict(args), doors_only])
        now = self._monotonic()
        self._expire_keys(now)
        entry = self._idempotent.get(key)
        if entry is not None and self._refusal(principal, device, doors_only):
            entry = None  # no answer for a device the caller may no longer operate: refused anew
            self._idempotent.pop(key, None)
        if entry is not None:
            run.close()
            if entry.fingerprint != fingerprint:
                return Result(Outcome.BAD_REQUEST, "Idempotency-Key reused for a different request")
            return await asyncio.shield(entry.task)
        task = asyncio.create_task(self._answered(run), name=f"command:{device}")
        entry = _Idem(fingerprint, task, now + self.settings.idempotency_ttl_s)
        self._idempotent[key] = entry
        result = await asyncio.shield(task)
        if not result.command_id:  # nothing was sent: a retry may try again
            self._idempotent.pop(key, None)
        return result

    def _refusal(self, principal: Principal, device: str, doors_only: bool) -> str:
        """Why ``principal`` may not operate ``device`` now (``""``: it may)."""
        st = self.devices.get(device)
        if st is None or (doors_only and st.device_class != "access"):
            return "no such device"
        if not principal.may_see(st.community):
            return "outside the caller's communities"
        return may_operate(principal, st.community, st.building, st.device_class)

    def _expire_keys(self, now: float) -> None:
        keys = self._idempotent
        while keys:
            first = next(iter(keys.values()))
            if first.expires > now and len(keys) < MAX_IDEMPOTENCY_KEYS:
                break
            if not first.task.done():
                break
            keys.popitem(last=False)

    async def _answered(self, attempt: Coroutine[Any, Any, Result]) -> Result:
        result = await attempt
        await self.audit.flushed()  # the answer only once the audit row says it
        return result

    async def _attempt(
        self,
        principal: Principal,
        device: str,
        action: str,
        args: dict[str, Any],
        doors_only: bool,
    ) -> Result:
        started = self._monotonic()
        st = self.devices.get(device)
        row: dict[str, Any] = {
            "principal": principal.name,
            "principal_kind": principal.kind,
            "credential": principal.credential,
            "device": device,
            "action": action,
            "args": args,
            "community": st.community if st is not None else "",
        }

        def refuse(
            outcome: Outcome, reason: str, retry: float | None = None, told: str | None = None
        ) -> Result:
            """Audit the refusal with its ``reason``; the caller is ``told`` (default: the
            reason) so that an answer reveals no more than the caller may know."""
            self.audit.record(**row, outcome=outcome, reason=reason)
            self.outcomes[outcome] += 1
            return Result(outcome, reason if told is None else told, retry_after_s=retry)

        if principal.is_resident:
            wait = self.per_resident.take(("resident", *_identity(principal)))
            if wait:
                return refuse(Outcome.RATE_LIMITED, "too many attempts by this resident", wait)
        unknown = "no such door" if doors_only else "no such device"
        if st is None or (doors_only and st.device_class != "access"):
            return refuse(Outcome.NOT_FOUND, unknown)
        if not principal.may_see(st.community):  # another community's door: as if unknown
            return refuse(Outcome.NOT_FOUND, "outside the caller's communities", told=unknown)
        why = may_operate(principal, st.community, st.building, st.device_class)
        if why:
            return refuse(Outcome.FORBIDDEN, why)
        reg = self.registry.get(device)
        if reg is None or not st.registered:
            return refuse(Outcome.NOT_COMMANDABLE, "discovered device: not in the registry")
        through_adapter = bool(reg.adapter)  # it cannot verify signatures: its own path
        if through_adapter and (not reg.commands or self.adapters is None):
            return refuse(Outcome.NOT_COMMANDABLE, f"{reg.adapter} device without commands = true")
        if not through_adapter and not reg.secret:
            return refuse(Outcome.NOT_COMMANDABLE, "no command secret in the registry")
        profile = PROFILES.get(st.device_class)
        if profile is None:
            return refuse(Outcome.NOT_COMMANDABLE, f"class {st.device_class} takes no commands")
        try:
            args = profile.command_args(action, args)
        except Rejected as exc:
            return refuse(Outcome.BAD_REQUEST, f"{exc.reason}: {exc.detail}")
        wait = self.per_caller_door.take((device, *_identity(principal)))
        if wait:
            return refuse(
                Outcome.RATE_LIMITED, "too many attempts by this caller on this device", wait
            )
        if self.per_door.take(device):  # everyone together: an alert, never a lockout
            self.door_floods += 1
            self._fault(st, "door_attempts_flood", {"per_minute": self.per_door.rate * 60})
        if st.online is not True:
            return refuse(Outcome.OFFLINE, "device offline" if st.online is False else "never seen")
        if through_adapter and self.adapters is not None:
            try:
                command = self.adapters.plan(reg, action, args)
            except Rejected as exc:
                return refuse(Outcome.NOT_COMMANDABLE, exc.detail or exc.reason)
            return await self._send_adapter(row, reg, command, args, started)
        client = self._publisher
        if not client.connected:
            return refuse(Outcome.FAILED, "broker unavailable")
        return await self._send(row, reg, st, action, args, started, client)

    async def _send(
        self,
        row: dict[str, Any],
        reg: RegistryDevice,
        st: DeviceState,
        action: str,
        args: dict[str, Any],
        started: float,
        client: Publisher,
    ) -> Result:
        s = self.settings
        issued = self._now_ms()
        # expires_at on the monotonic clock: the wait must not end before it, however long
        # the attempt took to get here (rate limits, a busy loop)
        expires_mono = self._monotonic() + s.validity_s
        validity_ms = int(s.validity_s * 1000)
        cmd, payload = build_signed(
            st.device, action, args, reg.secret, issued_at_ms=issued, validity_ms=validity_ms
        )
        cmd_id = cmd["id"]
        row_id = self.audit.record(
            **{**row, "args": args}, outcome=Outcome.PENDING, command_id=cmd_id
        )
        await self.audit.flushed()  # nothing leaves before its audit row is on disk
        loop = asyncio.get_running_loop()
        waiter = _Waiter(st.device, loop.create_future())
        self._pending[cmd_id] = waiter
        topic = f"{self.prefix}/{st.community}/{st.device_class}/{st.device}/cmd"
        handed_over = False  # once published, the device may execute it whatever we answer
        try:
            remaining_s = (cmd["expires_at"] - self._now_ms()) / 1000
            # the broker drops the message after `expiry` s (<= the validity left); the wait
            # for the ack outlasts both it and expires_at
            expiry = max(1, math.floor(remaining_s))
            deadline = max(
                started + s.timeout_s,
                expires_mono + EXPIRY_MARGIN_S,
                self._monotonic() + expiry + EXPIRY_MARGIN_S,
            )
            if remaining_s <= 0.2:
                outcome, reason = Outcome.FAILED, "validity ran out before publishing"
            else:
                handed_over = True
                try:
                    await client.publish(
                        topic,
                        payload,
                        qos=1,
                        retain=False,
                        message_expiry=expiry,
                        timeout=remaining_s,
                    )
                except MqttError as exc:
                    outcome, reason = (
                        Outcome.FAILED,
                        f"not delivered to the broker: {type(exc).__name__}",
                    )
                else:
                    outcome, reason = await self._wait_ack(waiter, deadline)
        finally:
            self._pending.pop(cmd_id, None)
        latency = round((self._monotonic() - started) * 1000, 2)
        self.audit.finish(row_id, outcome, reason, latency)
        self.outcomes[outcome] += 1
        if outcome == Outcome.OK:
            self._observe(latency)
            return Result(outcome, reason, cmd_id, latency)
        log.info("command %s to %s: %s %s", action, st.device, outcome, reason)
        if not handed_over or outcome == Outcome.REFUSED:
            return Result(outcome, reason, cmd_id, latency)
        expires_at = int(cmd["expires_at"])
        until = may_execute_until(expires_at, reg.command_rule)
        late = _Late(st.device, action, row_id, outcome, reason, latency, expires_at, until)
        self._remember_late(cmd_id, late)
        return Result(
            outcome,
            reason,
            cmd_id,
            latency,
            expires_at_ms=expires_at,
            may_execute_until_ms=until,
            command_rule=reg.command_rule,
        )

    async def _send_adapter(
        self,
        row: dict[str, Any],
        reg: RegistryDevice,
        command: CommandPlan,
        args: dict[str, Any],
        started: float,
    ) -> Result:
        """A command through the device's adapter: audited with that path before it leaves,
        confirmed by the device's next state or the HTTP answer within ``timeout_s``."""
        assert self.adapters is not None
        row_id = self.audit.record(
            **{**row, "args": args}, outcome=Outcome.PENDING, path=reg.adapter
        )
        await self.audit.flushed()  # nothing leaves before its audit row is on disk
        outcome, reason = await self.adapters.execute(reg, command, self.settings.timeout_s)
        latency = round((self._monotonic() - started) * 1000, 2)
        self.audit.finish(row_id, outcome, reason, latency)
        self.outcomes[outcome] += 1
        if outcome == Outcome.OK:
            self._observe(latency)
        else:
            log.info(
                "command %s to %s through %s: %s %s",
                row["action"],
                reg.id,
                reg.adapter,
                outcome,
                reason,
            )
        return Result(outcome, reason, "", latency)

    def _remember_late(self, cmd_id: str, late: _Late) -> None:
        now = self._now_ms()
        entries = self._late
        while entries:
            first = next(iter(entries.values()))
            if len(entries) < MAX_LATE and first.may_execute_until_ms + LATE_KEEP_MS > now:
                break
            entries.popitem(last=False)
        entries[cmd_id] = late

    async def _wait_ack(self, waiter: _Waiter, deadline: float) -> tuple[Outcome, str]:
        try:
            async with asyncio.timeout(max(0.0, deadline - self._monotonic())):
                ack = await waiter.future
        except TimeoutError:
            return Outcome.TIMEOUT, "no ack from the device in time"
        if ack.get("ok") is True:
            return Outcome.OK, ""
        return Outcome.REFUSED, str(ack.get("error") or "refused")[:64]

    def _observe(self, latency_ms: float) -> None:
        self.latency_sum_ms += latency_ms
        for i, bound in enumerate(LATENCY_BUCKETS_MS):
            if latency_ms <= bound:
                self.latency_buckets[i] += 1
                return
        self.latency_buckets[-1] += 1

    # -- what devices say back --------------------------------------------------------------

    def on_commit(self, accepted: Sequence[Accepted]) -> None:
        """Ingest listener: resolve waiting attempts; record security events."""
        for item in accepted:
            m = item.message
            if m.kind == "ack":
                self._on_ack(item.device, m.attrs, item.received_ms)
            elif m.kind == "event" and m.event == "tamper":
                reason = m.attrs.get("reason")
                if reason in TAMPER_REASONS:
                    cmd_id = m.attrs.get("command_id")
                    self._security(
                        item.device, str(reason), cmd_id if isinstance(cmd_id, str) else ""
                    )

    def _on_ack(self, st: DeviceState, attrs: Mapping[str, Any], received_ms: int) -> None:
        cmd_id = attrs.get("id")
        if not isinstance(cmd_id, str):
            cmd_id = None
        waiter = self._pending.get(cmd_id) if cmd_id is not None else None
        if waiter is not None and waiter.device == st.device:
            if not waiter.future.done():
                waiter.future.set_result(dict(attrs))
            return
        late = self._late.get(cmd_id) if cmd_id is not None else None
        if late is not None and late.device == st.device:
            assert cmd_id is not None
            del self._late[cmd_id]  # one answer per command: a repeated ack changes nothing
            self._late_ack(st, cmd_id, late, attrs, received_ms)
            return
        error = attrs.get("error")
        # a refusal of a command this gateway is not waiting for: someone else sent it
        # (bad_signature and replayed come with a tamper event, recorded from that)
        if attrs.get("ok") is False and error in REFUSALS - TAMPER_REASONS:
            self._security(st, str(error), cmd_id if isinstance(cmd_id, str) else "")

    def _late_ack(
        self,
        st: DeviceState,
        cmd_id: str,
        late: _Late,
        attrs: Mapping[str, Any],
        received_ms: int,
    ) -> None:
        """The device answered a command after the gateway gave up on it."""
        after_s = (received_ms - late.expires_at_ms) / 1000
        if attrs.get("ok") is not True:
            # our own command, refused late (most often ``expired``): it did not execute
            error = str(attrs.get("error") or "refused")[:64]
            why = f"{late.reason}; the device refused it later ({error}, {after_s:+.1f} s)"
            self.audit.finish(late.row_id, late.outcome, why, late.latency_ms)
            return
        why = (
            f"{late.reason}; the device executed it after all: ack {after_s:+.1f} s from expires_at"
        )
        self.audit.finish(late.row_id, Outcome.LATE_OK, why, late.latency_ms)
        self._security(st, Outcome.LATE_OK, cmd_id)
        details = {
            "command_id": cmd_id,
            "action": late.action,
            "answered": late.outcome,
            "expires_at": late.expires_at_ms,
            "acked_at": received_ms,
            "audit_id": late.row_id,
        }
        self._fault(st, "command_late_ok", details)

    def _fault(self, st: DeviceState, rule: str, details: dict[str, Any]) -> None:
        for listener in self.fault_listeners:
            try:
                listener(st, rule, details)
            except Exception:  # one failing listener must not keep the others from hearing
                log.exception("command fault listener %r failed", listener)

    def _security(self, st: DeviceState, reason: str, command_id: str) -> None:
        if reason != Outcome.LATE_OK and self.security_rows.take(st.device):
            self.security_suppressed[reason] += 1
            if st.device not in self._flooding:  # said once per flood, not per event
                self._flooding.add(st.device)
                log.warning(
                    "security events from %s beyond %d a minute: counted, not audited",
                    st.device,
                    SECURITY_ROWS_PER_MINUTE,
                )
            return
        self._flooding.discard(st.device)
        self.security_events[reason] += 1
        self.audit.record(
            principal=st.device,
            principal_kind="device",
            credential="",
            community=st.community,
            device=st.device,
            action="security_event",
            outcome=Outcome.SECURITY,
            reason=reason,
            command_id=command_id[:64],
        )
        what = (
            "executed a command after the answer"
            if reason == Outcome.LATE_OK
            else "refused a command"
        )
        log.warning("security event on %s: %s (%s)", st.device, what, reason)

    # -- metrics ----------------------------------------------------------------------------


def may_execute_until(expires_at_ms: int, command_rule: int) -> int:
    """The last instant (the gateway's clock) a device may execute a command that expires at
    ``expires_at_ms``, if its clock is within the contract's 30 s of the gateway's.

    Rule 2 firmware executes nothing after ``expires_at`` by its own clock, which may run up to
    30 s behind; rule 1 firmware allows another 30 s of skew past ``expires_at``. A device whose
    clock agrees with the gateway's executes nothing after ``expires_at`` under rule 2.
    """
    behind = CLOCK_SKEW_MS
    past = 0 if command_rule >= COMMAND_RULE else CLOCK_SKEW_MS
    return expires_at_ms + behind + past
