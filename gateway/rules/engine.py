"""The rules engine: fed the committed stream, it keeps per-device state and timers, raises and
clears alerts, opens tickets and sends service triggers (parcel reminders).

One engine per gateway runs on the event loop: it is the single writer of alerts and tickets,
so a (device, rule) can never be raised twice. Each batch (and each timer) is one transaction
that also moves the ``rules`` cursor in the journal, so after a crash the engine replays exactly
the messages it had not finished (``replay``). Durable timers (held doors, leaks, parcels,
hysteresis, ticket resolution) are stored as wall-clock deadlines and re-armed at start.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from devices.model import Decoded
from gateway.alerts import AlertBook
from gateway.clock import Clock, Handle
from gateway.rules import handlers
from gateway.rules.builtin import Rule
from gateway.rules.db import transaction
from gateway.store.journal import Accepted, DeviceState
from gateway.store.schema import KIND_NAMES, migrate
from gateway.tickets import TicketBook
from gateway.webhooks.outbox import Outbox

log = logging.getLogger(__name__)

CURSOR = "rules"
CURSOR_EVERY_S = 1.0
SILENCE = "silence"  # the liveness timer: derived from last-seen, never stored
RECONNECT = "reconnect"  # a doubted offline: the device has until then to come back
_NO_DATA: dict[str, Any] = {}  # shared by every timer without data; never written to


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device: str
    community: str
    device_class: str
    parent: str = ""
    expect_every_s: float | None = None
    bridged: bool = False  # the gateway's own field bus, or a device on it: the gateway polls it


class Engine:
    """Rules over the committed stream. Construct, ``open()``, ``replay()``, then feed
    ``on_commit`` (an ingest listener)."""

    def __init__(
        self,
        conn: Callable[[], sqlite3.Connection],
        clock: Clock,
        rules: Mapping[str, Rule],
        alerts: AlertBook,
        tickets: TicketBook,
        outbox: Outbox,
        devices: Iterable[DeviceInfo],
        states: Mapping[str, DeviceState],
        mark_offline: Callable[[DeviceState, int], None],
    ) -> None:
        self._conn = conn
        self.clock = clock
        self.rules = rules
        self.alerts = alerts
        self.tickets = tickets
        self.outbox = outbox
        self.info = {d.device: d for d in devices}
        self.states = states
        self._mark_offline = mark_offline
        self.children: dict[str, list[str]] = {}
        for d in self.info.values():
            if d.parent:
                self.children.setdefault(d.parent, []).append(d.device)
        self.timers: dict[tuple[str, str], tuple[int, dict[str, Any], Handle]] = {}
        self._fire_cb = self._fire  # one bound method for every timer
        self.last_seen: dict[str, int] = {}
        self.grace_from: dict[str, int] = {}
        self.memory: dict[tuple[str, str], Any] = {}  # per-device rule state (windows, values)
        self.started_ms = 0
        self.processed_total = 0
        self._cursor_saved = 0.0
        self._missed = False  # the last batch's transaction failed: left for the next replay
        # Offline statuses received before this are doubted (see doubt_offline_until), and the
        # devices whose doubted offline waits for them to reconnect
        self.doubt_until_ms = 0
        self.awaiting_reconnect: set[str] = set()

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn()

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Create the tables, load open alerts and tickets, re-arm timers."""
        migrate(self.conn)
        self.alerts.load()
        self.tickets.load()
        self.started_ms = self.clock.now_ms()
        for device, key, deadline, data in self.conn.execute(
            "SELECT device, key, deadline_ms, data FROM rule_timers"
        ):
            self._arm(device, key, deadline, orjson.loads(data))
            if key == RECONNECT:
                self.awaiting_reconnect.add(device)
        for d in self.info.values():
            st = self.states.get(d.device)
            if st is not None and st.last_seen_ms is not None:
                self.last_seen[d.device] = st.last_seen_ms
            self.arm_silence(d.device)

    def close(self) -> None:
        """A clean stop: the cursor moves to the journal's head (the ingest has drained, every
        commit has been through ``on_commit``), so the next start replays nothing. A replay
        decides from the journal's rows, which keep less than the live messages (a status's
        reason): after a crash that is the price, after a planned stop it must not be."""
        for _, _, handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        if self._missed:
            return  # a failed batch: left for the replay
        try:
            with transaction(self.conn):
                self._save_cursor()
        except sqlite3.Error as exc:  # the next start replays a little more, nothing is lost
            log.warning("rules: cursor not saved at stop: %s", exc)

    def doubt_offline_until(self, until_ms: int) -> None:
        """The gateway stopped cleanly with its embedded broker, whose own stop fired the
        connected devices' last wills: the offline statuses that arrive before ``until_ms``
        (queued or retained) are the gateway's doing, unless the device fails to come back
        within ``reconnect_wait_s``. Called at start, before any message."""
        self.doubt_until_ms = until_ms

    def replay(self, devices: Mapping[str, DeviceState]) -> int:
        """Run the rules over journal rows committed after the cursor (a crash between the
        journal's commit and ours). The first run starts at the journal's head."""
        conn = self.conn
        row = conn.execute("SELECT position FROM cursors WHERE name=?", (CURSOR,)).fetchone()
        if row is None:
            with transaction(conn):
                self._save_cursor()
            return 0
        by_id = {st.id: st for st in devices.values()}
        batch: list[Accepted] = []
        for _, device_id, ts_ms, seq, kind, received_ms, flag, body in conn.execute(
            "SELECT id, device_id, ts_ms, seq, kind, received_ms, flag, body FROM journal"
            " WHERE id > ? ORDER BY id",
            (int(row[0]),),
        ).fetchall():
            st = by_id.get(device_id)
            if st is not None:
                batch.append(Accepted(st, _decoded(st, kind, ts_ms, seq, flag, body), received_ms))
        if batch:
            log.info("rules: replaying %d journal rows after a restart", len(batch))
        self.on_commit(batch)
        return len(batch)

    # -- the stream ----------------------------------------------------------------------------

    def on_commit(self, accepted: Sequence[Accepted]) -> None:
        """An ingest listener: one transaction for the batch and the cursor."""
        conn = self.conn
        self._missed = True  # until this batch's transaction is through
        with transaction(conn):
            before = conn.total_changes
            for item in accepted:
                self.last_seen[item.device.device] = item.received_ms
                try:
                    handlers.on_message(self, item.device, item.message, item.received_ms)
                except (KeyError, TypeError, ValueError):  # one odd message never stops the rest
                    log.exception("rules failed on a message of %s", item.device.device)
            # The cursor moves with every change (so a change is never replayed) and at least
            # every CURSOR_EVERY_S otherwise (what is replayed then changed nothing the first
            # time); not per batch, which would add a WAL page per group commit.
            now = self.clock.monotonic()
            if conn.total_changes != before or now - self._cursor_saved >= CURSOR_EVERY_S:
                self._save_cursor()
                self._cursor_saved = now
        self._missed = False
        self.processed_total += len(accepted)

    def _save_cursor(self) -> None:
        (head,) = self.conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
        self.conn.execute(
            "INSERT INTO cursors (name, position, updated_ms) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET position=excluded.position,"
            " updated_ms=excluded.updated_ms",
            (CURSOR, head, self.clock.now_ms()),
        )

    # -- alerts --------------------------------------------------------------------------------

    def fault(self, device: str, rule_name: str, details: dict[str, Any], at_ms: int) -> bool:
        """The condition of ``rule_name`` holds for ``device``; True if an alert was raised."""
        rule = self.rules[rule_name]
        d = self.info.get(device)
        st = self.states.get(device)
        community = d.community if d else (st.community if st else "")
        device_class = d.device_class if d else (st.device_class if st else "gateway")
        if not rule.enabled or (rule.classes and device_class not in rule.classes):
            return False
        self.cancel(device, f"clear:{rule_name}")
        alert, new = self.alerts.raise_(rule, device, community, device_class, details, at_ms)
        if new:
            log.info("alert raised: %s on %s", rule_name, device)
            if rule.ticket:
                self.tickets.on_raised(rule, alert, at_ms)
                self.cancel(device, f"resolve:{rule_name}")
        if rule.auto_clear_s > 0:
            self.set_timer(device, f"autoclear:{rule_name}", at_ms + int(rule.auto_clear_s * 1000))
        return new

    def ok(self, device: str, rule_name: str, at_ms: int, reason: str = "condition ended") -> None:
        """The condition ended: clear now, or after ``clear_after_s`` if it stays ended."""
        if self.alerts.get(device, rule_name) is None:
            return
        rule = self.rules[rule_name]
        if rule.clear_after_s > 0:
            if (device, f"clear:{rule_name}") not in self.timers:
                deadline = at_ms + int(rule.clear_after_s * 1000)
                self.set_timer(device, f"clear:{rule_name}", deadline, {"reason": reason})
            return
        self.clear_now(device, rule_name, at_ms, reason)

    def clear_now(self, device: str, rule_name: str, at_ms: int, reason: str) -> None:
        rule = self.rules[rule_name]
        self.cancel(device, f"clear:{rule_name}")
        self.cancel(device, f"autoclear:{rule_name}")
        if self.alerts.clear(device, rule_name, at_ms, reason) is None:
            return
        log.info("alert cleared: %s on %s (%s)", rule_name, device, reason)
        if rule.ticket:
            t = self.tickets.on_recovered(device, rule, at_ms)
            if t is not None and t.status == "open" and rule.resolve_after_s > 0:
                self.set_timer(
                    device, f"resolve:{rule_name}", at_ms + int(rule.resolve_after_s * 1000)
                )

    def acknowledge(self, alert_id: int, by: str) -> Any:
        with transaction(self.conn):
            return self.alerts.acknowledge(alert_id, by, self.clock.now_ms())

    def resolve_ticket(self, ticket_id: int, by: str) -> Any:
        with transaction(self.conn):
            t = self.tickets.by_id(ticket_id)
            if t is None or t.status != "open":
                return t
            self.cancel(t.device, f"resolve:{t.rule}")
            return self.tickets.resolve(
                self.tickets.open[(t.device, t.rule)], self.clock.now_ms(), f"resolved by {by}"
            )

    def trigger(self, type_: str, device: str, data: dict[str, Any], at_ms: int) -> None:
        """A service trigger to the platform (e.g. ``parcel.reminder``)."""
        d = self.info.get(device)
        st = self.states.get(device)
        self.outbox.publish(
            type_,
            data,
            community=d.community if d else (st.community if st else ""),
            device_class=d.device_class if d else (st.device_class if st else ""),
            severity="info",
            at_ms=at_ms,
        )

    def external(self, fn: Callable[[], None]) -> None:
        """Run a state change from outside the stream (the deliverer) in a transaction."""
        with transaction(self.conn):
            fn()

    # -- timers --------------------------------------------------------------------------------

    def set_timer(
        self, device: str, key: str, deadline_ms: int, data: dict[str, Any] | None = None
    ) -> None:
        data = data or _NO_DATA
        self._arm(device, key, deadline_ms, data)
        if key != SILENCE:
            self.conn.execute(
                "INSERT OR REPLACE INTO rule_timers (device, key, deadline_ms, data)"
                " VALUES (?, ?, ?, ?)",
                (device, key, deadline_ms, orjson.dumps(data).decode()),
            )

    def has_timer(self, device: str, key: str) -> bool:
        return (device, key) in self.timers

    def cancel(self, device: str, key: str) -> None:
        entry = self.timers.pop((device, key), None)
        if entry is not None:
            entry[2].cancel()
            if key != SILENCE:
                self.conn.execute("DELETE FROM rule_timers WHERE device=? AND key=?", (device, key))

    def _arm(self, device: str, key: str, deadline_ms: int, data: dict[str, Any]) -> None:
        old = self.timers.pop((device, key), None)
        if old is not None:
            old[2].cancel()
        # the arguments ride in the timer handle, no closure: one of these waits per device
        # (100,000 of them), and a closure or a partial costs as much again
        handle = self.clock.call_at_ms(deadline_ms, self._fire_cb, device, key, deadline_ms)
        self.timers[(device, key)] = (deadline_ms, data, handle)

    def _fire(self, device: str, key: str, deadline_ms: int) -> None:
        entry = self.timers.get((device, key))
        if entry is None or entry[0] != deadline_ms:
            return
        try:
            with transaction(self.conn):
                self.cancel(device, key)
                handlers.on_timer(self, device, key, entry[1], self.clock.now_ms())
        except Exception:  # a timer callback is a task boundary
            log.exception("rules timer %s of %s failed", key, device)

    # -- liveness ------------------------------------------------------------------------------

    def silence_deadline(self, device: str) -> int | None:
        d = self.info.get(device)
        if d is None or d.expect_every_s is None:
            return None
        # after a start every device gets a full grace period: the gateway was deaf, not it
        last = self.last_seen.get(device, self.started_ms)
        base = max(last, self.started_ms, self.grace_from.get(device, 0))
        periods = self.rules["device_offline"].p("silent_periods")
        return base + int(periods * d.expect_every_s * 1000)

    def arm_silence(self, device: str) -> None:
        deadline = self.silence_deadline(device)
        if deadline is not None:
            self._arm(device, SILENCE, deadline, _NO_DATA)

    def mark_offline(self, device: str, at_ms: int) -> None:
        """The engine is the one owner of the silence verdict: it marks the device's state
        offline (an unlock then answers 503) when its own rule says so, alert or not."""
        st = self.states.get(device)
        if st is None or st.online is False:
            return
        self._mark_offline(st, at_ms)
        log.info("device %s offline: silent past its deadline", device)

    def silent(self, device: str, now_ms: int) -> bool:
        deadline = self.silence_deadline(device)
        return deadline is not None and now_ms >= deadline

    def parent_verdict_due(self, device: str, now_ms: int) -> int | None:
        """When a silent child's parent fell silent about as long ago, wait for the parent's
        own deadline (then one alert for the parent, none for the child): that deadline."""
        d = self.info.get(device)
        if d is None or not d.parent or d.expect_every_s is None:
            return None
        p_deadline = self.silence_deadline(d.parent)
        if p_deadline is None or p_deadline <= now_ms:
            return None
        p_last = self.last_seen.get(d.parent, self.started_ms)
        c_last = self.last_seen.get(device, self.started_ms)
        if p_last > c_last + int(d.expect_every_s * 1000):
            return None  # the parent still talks: the child itself is down
        return p_deadline + 1

    def parent_down(self, device: str, now_ms: int) -> bool:
        d = self.info.get(device)
        if d is None or not d.parent:
            return False
        p = d.parent
        st = self.states.get(p)
        return (
            self.alerts.get(p, "device_offline") is not None
            or (st is not None and st.online is False)
            or self.silent(p, now_ms)
        )


def _decoded(st: DeviceState, kind: int, ts_ms: int, seq: int, flag: str, body: str) -> Decoded:
    data: dict[str, Any] = orjson.loads(body)
    name = KIND_NAMES[kind]
    common: dict[str, Any] = {
        "device_class": st.device_class,
        "device": st.device,
        "ts_ms": ts_ms,
        "ts_flag": flag,
        "seq": None if seq < 0 else seq,
    }
    if name == "telemetry":
        return Decoded(kind="telemetry", fields=data, **common)
    if name == "status":
        return Decoded(kind="status", status=data.get("state"), **common)
    if name == "event":
        event = data.pop("event", None)
        return Decoded(kind="event", event=event, attrs=data, **common)
    return Decoded(kind="ack", attrs=data, **common)
