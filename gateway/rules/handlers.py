"""What each built-in rule does with a message or a timer. Pure decisions over the engine's
helpers (``fault``, ``ok``, timers); no I/O of their own."""

from __future__ import annotations

from collections import deque
from typing import Any

from devices.model import GATEWAY_STOPPED, Decoded
from gateway.rules.context import RuleContext
from gateway.store.journal import DeviceState

COMMAND_REFUSALS = ("bad_signature", "replayed")
COUNTERS = ("energy_kwh", "volume_m3")


def on_message(e: RuleContext, st: DeviceState, m: Decoded, received_ms: int) -> None:
    device = st.device
    _liveness(e, st, m, received_ms)
    if m.kind == "telemetry":
        f = m.fields
        battery = f.get("battery_pct")
        if battery is not None and not isinstance(battery, bool):
            r = e.rules["battery_low"]
            if battery < r.p("below_pct"):
                e.fault(device, "battery_low", {"battery_pct": battery}, m.ts_ms)
            elif battery >= r.p("clear_pct"):
                e.ok(device, "battery_low", m.ts_ms, "battery recovered")
        cls = st.device_class
        if cls == "access":
            _door_telemetry(e, device, f, m.ts_ms)
        elif cls == "meter":
            _meter_telemetry(e, device, f, m.ts_ms)
        elif cls == "parking":
            _parking_telemetry(e, device, f, m.ts_ms)
    elif m.kind == "event" and m.event is not None:
        _event(e, st, m.event, m.attrs, m.ts_ms)


def _liveness(e: RuleContext, st: DeviceState, m: Decoded, received_ms: int) -> None:
    device = st.device
    if m.kind == "status" and m.status == "offline":
        info = e.info.get(device)
        if m.attrs.get("reason") == GATEWAY_STOPPED and info is not None and info.bridged:
            # the gateway stopped polling its own bus: offline (the state says so), planned,
            # not an outage. Only for its own buses: a device cannot talk its way out of one.
            return
        if received_ms < e.doubt_until_ms or device in e.awaiting_reconnect:
            # a will the embedded broker's own stop fired (or its retained copy): offline for
            # now, alerted only if the device does not come back
            if device not in e.awaiting_reconnect:
                e.awaiting_reconnect.add(device)
                wait_ms = int(e.rules["device_offline"].p("reconnect_wait_s") * 1000)
                e.set_timer(device, "reconnect", received_ms + wait_ms)
            return
        _offline(e, device, received_ms, "last will or offline status")
        return
    if e.awaiting_reconnect and device in e.awaiting_reconnect:
        e.awaiting_reconnect.discard(device)  # back: the restart was all it was
        e.cancel(device, "reconnect")
    if e.alerts.get(device, "device_offline") is not None:
        e.ok(device, "device_offline", received_ms, "device back")
        if device in e.children:
            for child in e.children[device]:  # a fresh grace period for what hangs below it
                e.grace_from[child] = received_ms
    if not e.has_timer(device, "silence"):
        e.arm_silence(device)


def _offline(e: RuleContext, device: str, at_ms: int, why: str) -> None:
    if e.parent_down(device, at_ms):
        return  # the parent's alert covers it
    if e.fault(device, "device_offline", {"reason": why}, at_ms):
        for child in e.children.get(device, ()):
            if e.alerts.get(child, "device_offline") is not None:
                e.clear_now(child, "device_offline", at_ms, f"parent {device} offline")


def _door_telemetry(e: RuleContext, device: str, f: dict[str, Any], ts_ms: int) -> None:
    is_open = f.get("door_open")
    if is_open is True:
        _door_opened(e, device, ts_ms)
    elif is_open is False:
        _door_closed(e, device, ts_ms)


def _door_opened(e: RuleContext, device: str, ts_ms: int) -> None:
    if not e.has_timer(device, "held"):
        open_s = e.rules["door_held_open"].p("open_s")
        e.set_timer(device, "held", ts_ms + int(open_s * 1000), {"since": ts_ms})


def _door_closed(e: RuleContext, device: str, ts_ms: int) -> None:
    e.cancel(device, "held")
    e.ok(device, "door_forced", ts_ms, "door closed")
    e.ok(device, "door_held_open", ts_ms, "door closed")


def _meter_telemetry(e: RuleContext, device: str, f: dict[str, Any], ts_ms: int) -> None:
    for name in COUNTERS:
        value = f.get(name)
        if value is None:
            continue
        prev = e.memory.get((device, name))
        e.memory[(device, name)] = value
        if prev is not None and value < prev:
            details = {"field": name, "previous": prev, "value": value}
            e.fault(device, "counter_backwards", details, ts_ms)
    leak = f.get("leak")  # a leak sensor's state (CONTRACT.md 7.3): wet raises leak_detected
    if leak is True:
        e.fault(device, "leak_detected", {"field": "leak"}, ts_ms)
    elif leak is False:
        e.ok(device, "leak_detected", ts_ms, "leak sensor dry")
    power = f.get("power_w")
    if power is not None:
        r = e.rules["power_over_limit"]
        if power > r.p("limit_w"):
            e.fault(device, "power_over_limit", {"power_w": power}, ts_ms)
        elif power <= r.p("limit_w") * r.p("clear_ratio"):
            e.ok(device, "power_over_limit", ts_ms, "power back under the limit")
    flow = f.get("flow_m3h")
    if flow is not None:
        if flow > 0:
            if not e.has_timer(device, "flow") and e.alerts.get(device, "continuous_flow") is None:
                flow_s = e.rules["continuous_flow"].p("flow_s")
                e.set_timer(device, "flow", ts_ms + int(flow_s * 1000), {"since": ts_ms})
        else:
            e.cancel(device, "flow")
            e.ok(device, "continuous_flow", ts_ms, "flow stopped")


def _parking_telemetry(e: RuleContext, device: str, f: dict[str, Any], ts_ms: int) -> None:
    occupied = f.get("occupied")
    if occupied is True and not e.has_timer(device, "overstay"):
        if e.alerts.get(device, "parking_overstay") is None:
            limit = e.rules["parking_overstay"].p("limit_s")
            e.set_timer(device, "overstay", ts_ms + int(limit * 1000), {"since": ts_ms})
    elif occupied is False:
        e.cancel(device, "overstay")
        e.ok(device, "parking_overstay", ts_ms, "space free")
    free, total = f.get("free_spaces"), f.get("total_spaces")
    if free is not None and total:
        used = 100.0 * (total - free) / total
        r = e.rules["lot_nearly_full"]
        if used >= r.p("full_pct"):
            e.fault(device, "lot_nearly_full", {"used_pct": round(used, 1)}, ts_ms)
        elif used <= r.p("clear_pct"):
            e.ok(device, "lot_nearly_full", ts_ms, "spaces free again")


SIMPLE_EVENTS = {
    "door_forced": "door_forced",
    "leak_detected": "leak_detected",
    "reverse_flow": "reverse_flow",
    "barrier_fault": "barrier_fault",
    "compartment_jammed": "compartment_jammed",
    "compartment_left_open": "compartment_left_open",
}


def _event(e: RuleContext, st: DeviceState, name: str, attrs: dict[str, Any], ts_ms: int) -> None:
    device = st.device
    rule = SIMPLE_EVENTS.get(name)
    if rule is not None:
        e.fault(device, rule, dict(attrs), ts_ms)
        if name == "door_forced":
            _door_opened(e, device, ts_ms)
    elif name == "tamper":
        if attrs.get("reason") in COMMAND_REFUSALS and st.device_class == "access":
            e.fault(device, "command_rejected", dict(attrs), ts_ms)
        else:
            e.fault(device, "tamper", dict(attrs), ts_ms)
    elif name == "door_held_open":
        e.fault(device, "door_held_open", dict(attrs), ts_ms)
    elif name == "door_opened":
        _door_opened(e, device, ts_ms)
    elif name == "door_closed":
        _door_closed(e, device, ts_ms)
    elif name == "access_denied":
        r = e.rules["access_brute_force"]
        window: deque[int] = e.memory.setdefault((device, "denied"), deque())
        window.append(ts_ms)
        horizon = ts_ms - int(r.p("window_s") * 1000)
        while window and window[0] < horizon:
            window.popleft()
        if len(window) >= r.p("count"):
            details = {"denied": len(window), "window_s": r.p("window_s")}
            e.fault(device, "access_brute_force", details, ts_ms)
    elif name == "parcel_deposited":
        r = e.rules["parcel_reminder"]
        if r.enabled:
            data = {
                "compartment": attrs.get("compartment"),
                "parcel_id": attrs.get("parcel_id"),
                "unit": attrs.get("unit"),
                "deposited_ms": ts_ms,
                "reminders": 0,
            }
            key = f"parcel:{attrs.get('compartment')}"
            e.set_timer(device, key, ts_ms + int(r.p("after_s") * 1000), data)
    elif name == "parcel_picked_up":
        e.cancel(device, f"parcel:{attrs.get('compartment')}")


def on_timer(e: RuleContext, device: str, key: str, data: dict[str, Any], now_ms: int) -> None:
    kind, _, arg = key.partition(":")
    if kind == "silence":
        if not e.silent(device, now_ms):
            e.arm_silence(device)
            return
        e.mark_offline(device, now_ms)  # silent: offline, whoever's alert covers it
        if (wait_until := e.parent_verdict_due(device, now_ms)) is not None:
            e.set_timer(device, "silence", wait_until)  # the parent's alert may cover it
        else:
            _offline(e, device, now_ms, "silent for too long")
    elif kind == "reconnect":
        e.awaiting_reconnect.discard(device)
        _offline(e, device, now_ms, "last will, not back after the gateway's restart")
    elif kind == "clear":
        e.clear_now(device, arg, now_ms, data.get("reason", "condition ended"))
    elif kind == "autoclear":
        e.clear_now(device, arg, now_ms, "no repeat")
    elif kind == "resolve":
        t = e.tickets.open.get((device, arg))
        if t is not None:
            e.tickets.resolve(t, now_ms, "healthy since recovery")
    elif kind == "held":
        open_s = e.rules["door_held_open"].p("open_s")
        e.fault(device, "door_held_open", {"seconds": open_s, "inferred": True}, now_ms)
    elif kind == "flow":
        details = {"since_ms": data.get("since"), "flow_s": e.rules["continuous_flow"].p("flow_s")}
        e.fault(device, "continuous_flow", details, now_ms)
    elif kind == "overstay":
        e.fault(device, "parking_overstay", {"since_ms": data.get("since")}, now_ms)
    elif kind == "parcel":
        _parcel_reminder(e, device, key, data, now_ms)


def _parcel_reminder(
    e: RuleContext, device: str, key: str, data: dict[str, Any], now_ms: int
) -> None:
    r = e.rules["parcel_reminder"]
    data = {**data, "reminders": int(data.get("reminders", 0)) + 1}
    waited = (now_ms - int(data["deposited_ms"])) / 3_600_000
    e.trigger(
        "parcel.reminder",
        device,
        {
            "device": device,
            "community": e.info[device].community if device in e.info else "",
            "compartment": data["compartment"],
            "parcel_id": data["parcel_id"],
            "unit": data["unit"],
            "waiting_hours": round(waited, 2),
            "reminder": data["reminders"],
        },
        now_ms,
    )
    if r.p("repeat_s") > 0:
        e.set_timer(device, key, now_ms + int(r.p("repeat_s") * 1000), data)
