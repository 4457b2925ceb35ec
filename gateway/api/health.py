"""``/healthz`` (no auth: liveness for load balancers) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from gateway.api.deps import GatewayDep, PlatformDep
from gateway.command_metrics import command_metrics
from gateway.rules.service import Alerting
from gateway.service import Gateway
from gateway.store.pressure import FLOOR, QUOTA, WRITE_FAILURES, StorePressure
from gateway.store.schema import wal_bytes

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(gateway: GatewayDep) -> dict[str, Any]:
    """Liveness: 200 while the process answers, even when the store is degraded (restarting
    the gateway would not give the disk room back); ``status`` and ``store`` say whether it
    is. Readiness, with a status code, is ``/readyz``."""
    store = gateway.pressure.stats()
    return {
        "status": store["status"],
        "mqtt_connected": gateway.client.connected,
        "store": store,
    }


@router.get("/readyz")
async def readyz(gateway: GatewayDep) -> JSONResponse:
    """Readiness: 503 with the reasons while the store sheds, holds acknowledgements or
    cannot write; 200 otherwise."""
    store = gateway.pressure.stats()
    body = {"status": store["status"], "mqtt_connected": gateway.client.connected, "store": store}
    return JSONResponse(body, status_code=503 if gateway.pressure.degraded else 200)


def _line(out: list[str], name: str, value: float, labels: dict[str, str] | None = None) -> None:
    if labels:
        inner = ",".join(
            f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in labels.items()
        )
        out.append(f"{name}{{{inner}}} {value}")
    else:
        out.append(f"{name} {value}")


def render_metrics(gateway: Gateway) -> str:
    out: list[str] = []

    def metric(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    store = gateway.store
    ingest = gateway.ingest
    client = gateway.client
    metric("courtyard_messages_received_total", "counter", "MQTT messages received")
    _line(out, "courtyard_messages_received_total", ingest.received_total)
    metric("courtyard_journal_inserted_total", "counter", "Messages written to the journal")
    _line(out, "courtyard_journal_inserted_total", store.inserted_total)
    metric("courtyard_journal_duplicates_total", "counter", "Redelivered messages stored once")
    _line(out, "courtyard_journal_duplicates_total", store.duplicates_total)
    metric("courtyard_journal_commits_total", "counter", "Group commits")
    _line(out, "courtyard_journal_commits_total", store.commits_total)
    metric("courtyard_store_wal_bytes", "gauge", "Size of the store's write-ahead log file")
    _line(out, "courtyard_store_wal_bytes", wal_bytes(store.path))
    metric("courtyard_ingest_pending", "gauge", "Messages decoded and not yet committed")
    _line(out, "courtyard_ingest_pending", ingest.pending)
    metric("courtyard_dead_letters_total", "counter", "Rejected messages by reason")
    by_adapter = store.adapter_dead_letter_counts
    for reason, count in sorted(store.dead_letter_counts.items()):
        native = count - sum(n for (r, _), n in by_adapter.items() if r == reason)
        if native > 0 or not any(r == reason for r, _ in by_adapter):
            _line(out, "courtyard_dead_letters_total", native, {"reason": reason})
    for (reason, adapter), count in sorted(by_adapter.items()):
        _line(out, "courtyard_dead_letters_total", count, {"reason": reason, "adapter": adapter})
    metric(
        "courtyard_adapter_ignored_total",
        "counter",
        "Ecosystem messages that are no device message (bridge logs, heartbeats, echoes)",
    )
    for (adapter, why), count in sorted(gateway.ingest.adapter_ignored.items()):
        _line(out, "courtyard_adapter_ignored_total", count, {"adapter": adapter, "reason": why})
    metric("courtyard_devices", "gauge", "Devices by liveness state")
    states = Counter(
        "online" if st.online else "offline" if st.online is False else "unknown"
        for st in store.devices.values()
    )
    for state in ("online", "offline", "unknown"):
        _line(out, "courtyard_devices", states[state], {"state": state})
    metric("courtyard_devices_discovered", "gauge", "Devices heard but not in the registry")
    _line(
        out,
        "courtyard_devices_discovered",
        sum(1 for st in store.devices.values() if not st.registered),
    )
    metric("courtyard_mqtt_connected", "gauge", "1 while connected to the broker")
    _line(out, "courtyard_mqtt_connected", int(client.connected))
    metric("courtyard_mqtt_reconnects_total", "counter", "Reconnections to the broker")
    _line(out, "courtyard_mqtt_reconnects_total", client.reconnects)
    metric("courtyard_mqtt_received_bytes_total", "counter", "Bytes read from the broker")
    _line(out, "courtyard_mqtt_received_bytes_total", client.bytes_in)
    if gateway.broker.embedded:
        metric("courtyard_broker_restarts_total", "counter", "Embedded broker restarts")
        _line(out, "courtyard_broker_restarts_total", gateway.broker.restarts)
    out.extend(gateway.push.metrics())
    out.extend(pressure_metrics(gateway.pressure))
    out.extend(command_metrics(gateway.commands))
    out.extend(alerting_metrics(gateway.alerting))
    if gateway.fieldbus.schedulers:  # RS-485 buses: state, polls, errors per device
        out.extend(gateway.fieldbus.metrics_lines())
    for key, value in sorted(gateway.sink.stats().items()):  # none without InfluxDB
        if isinstance(value, bool | int | float):
            name = f"courtyard_influx_{key}"
            metric(name, "counter" if key.endswith("_total") else "gauge", f"InfluxDB {key}")
            _line(out, name, float(value))
    return "\n".join(out) + "\n"


def pressure_metrics(pressure: StorePressure) -> list[str]:
    """The disk quota: room, every shed row and every hold, and why the store is degraded."""
    out: list[str] = []

    def metric(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    usage = pressure.usage
    if usage is not None:
        metric("courtyard_store_used_bytes", "gauge", "Store database pages in use")
        _line(out, "courtyard_store_used_bytes", usage.used_bytes)
        metric("courtyard_store_free_disk_bytes", "gauge", "Free disk where the store is")
        _line(out, "courtyard_store_free_disk_bytes", usage.free_disk_bytes)
    metric("courtyard_store_max_bytes", "gauge", "The store's quota ([store] max_bytes; 0: none)")
    _line(out, "courtyard_store_max_bytes", pressure.max_bytes)
    metric("courtyard_store_shed_rows_total", "counter", "Meter readings shed by the quota")
    for action in ("downsampled", "dropped"):
        shed = pressure.shed_total[action]
        _line(out, "courtyard_store_shed_rows_total", shed, {"action": action})
    metric("courtyard_store_holds_total", "counter", "Times acknowledgements were held: no room")
    _line(out, "courtyard_store_holds_total", pressure.holds_total)
    metric("courtyard_store_held", "gauge", "1 while acknowledgements are held")
    _line(out, "courtyard_store_held", int(pressure.held))
    metric("courtyard_store_write_failures_total", "counter", "Failed group commits by reason")
    for reason in WRITE_FAILURES:
        _line(
            out,
            "courtyard_store_write_failures_total",
            pressure.write_failures_total[reason],
            {"reason": reason},
        )
    metric("courtyard_store_degraded", "gauge", "1 while the store is degraded, by reason")
    for reason in (QUOTA, FLOOR, *WRITE_FAILURES):
        _line(out, "courtyard_store_degraded", int(reason in pressure.reasons), {"reason": reason})
    return out


def alerting_metrics(alerting: Alerting) -> list[str]:
    """Alerts by state, open tickets, and per webhook endpoint: depth, oldest, deliveries,
    failures, failing."""
    out: list[str] = []
    stats = alerting.stats()

    def metric(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    metric("courtyard_alerts", "gauge", "Alerts by state")
    for state, n in sorted(stats["alerts"].items()):
        _line(out, "courtyard_alerts", n, {"state": state})
    metric("courtyard_tickets_open", "gauge", "Open repair tickets")
    _line(out, "courtyard_tickets_open", stats["tickets_open"])
    per_endpoint = (
        ("depth", "courtyard_webhook_outbox_depth", "gauge", "Webhooks waiting per endpoint"),
        ("oldest_age_s", "courtyard_webhook_outbox_oldest_seconds", "gauge", "Oldest waiting"),
        ("delivered_total", "courtyard_webhook_delivered_total", "counter", "Delivered"),
        ("failures_total", "courtyard_webhook_failures_total", "counter", "Failed attempts"),
        ("failing", "courtyard_webhook_endpoint_failing", "gauge", "1: undelivered too long"),
    )
    for key, name, kind, help_ in per_endpoint:
        metric(name, kind, help_)
        for e in stats["endpoints"]:
            _line(out, name, float(e[key]), {"endpoint": str(e["endpoint"])})
    metric("courtyard_webhook_attempts_total", "counter", "Delivery attempts")
    for endpoint, n in sorted(stats["attempts"].items()):
        _line(out, "courtyard_webhook_attempts_total", n, {"endpoint": str(endpoint)})
    name = "courtyard_webhook_delivery_latency_ms"
    metric(name, "summary", "Queued to accepted, recent 1,000 deliveries")
    for endpoint, qs in sorted(stats["latency_ms"].items()):
        for q, v in qs.items():
            _line(out, name, v, {"endpoint": str(endpoint), "quantile": q})
    metric("courtyard_stream_subscribers", "gauge", "Live event stream clients")
    _line(out, "courtyard_stream_subscribers", stats["stream_subscribers"])
    return out


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(gateway: GatewayDep, _: PlatformDep) -> PlainTextResponse:
    return PlainTextResponse(
        render_metrics(gateway), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
