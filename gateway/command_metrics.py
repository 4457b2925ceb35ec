"""The command service's Prometheus lines: attempts by outcome, latency, security events."""

from __future__ import annotations

from gateway.commands import LATENCY_BUCKETS_MS, CommandService


def command_metrics(service: CommandService) -> list[str]:
    """Prometheus lines: attempts by outcome, latency histogram, security events."""
    out = [
        "# HELP courtyard_commands_total Command attempts by outcome",
        "# TYPE courtyard_commands_total counter",
    ]
    out += [
        f'courtyard_commands_total{{outcome="{k}"}} {v}'
        for k, v in sorted(service.outcomes.items())
    ]
    out += [
        "# HELP courtyard_command_latency_ms Request to confirmed ack, successful commands",
        "# TYPE courtyard_command_latency_ms histogram",
    ]
    total = 0
    for bound, count in zip(LATENCY_BUCKETS_MS, service.latency_buckets, strict=False):
        total += count
        out.append(f'courtyard_command_latency_ms_bucket{{le="{bound}"}} {total}')
    total += service.latency_buckets[-1]
    out.append(f'courtyard_command_latency_ms_bucket{{le="+Inf"}} {total}')
    out.append(f"courtyard_command_latency_ms_sum {round(service.latency_sum_ms, 3)}")
    out.append(f"courtyard_command_latency_ms_count {total}")
    out += [
        "# HELP courtyard_commands_pending Commands waiting for their ack",
        "# TYPE courtyard_commands_pending gauge",
        f"courtyard_commands_pending {len(service._pending)}",
        "# HELP courtyard_security_events_total Forged, replayed or foreign commands refused"
        " by devices, and commands executed after the gateway answered (late_ok)",
        "# TYPE courtyard_security_events_total counter",
    ]
    out += [
        f'courtyard_security_events_total{{reason="{k}"}} {v}'
        for k, v in sorted(service.security_events.items())
    ]
    out += [
        "# HELP courtyard_security_events_suppressed_total Security events a device"
        " reported beyond its audit rate, counted but not audited",
        "# TYPE courtyard_security_events_suppressed_total counter",
    ]
    out += [
        f'courtyard_security_events_suppressed_total{{reason="{k}"}} {v}'
        for k, v in sorted(service.security_suppressed.items())
    ]
    out += [
        "# HELP courtyard_door_attempts_over_alert_rate_total Attempts beyond a door's"
        " alert rate (all callers together): door_attempts_flood, never refused for it",
        "# TYPE courtyard_door_attempts_over_alert_rate_total counter",
        f"courtyard_door_attempts_over_alert_rate_total {service.door_floods}",
    ]
    return out
