"""Utility meters: electricity, water and gas; no commands."""

from __future__ import annotations

from devices.profile import EventSpec, FieldSpec, Profile, battery, make_profile, tamper


def electricity_meter() -> tuple[FieldSpec, ...]:
    """Cumulative import energy, and instantaneous power, voltage and current."""
    return (
        FieldSpec("energy_kwh", "kWh", kind="counter"),
        FieldSpec("power_w", "W"),
        FieldSpec("voltage_v", "V"),
        FieldSpec("current_a", "A"),
    )


def water_meter() -> tuple[FieldSpec, ...]:
    """Cumulative volume and flow."""
    return (FieldSpec("volume_m3", "m3", kind="counter"), FieldSpec("flow_m3h", "m3/h"))


def gas_meter() -> tuple[FieldSpec, ...]:
    """Cumulative volume."""
    return (FieldSpec("volume_m3", "m3", kind="counter"),)


def meter_events() -> tuple[EventSpec, ...]:
    """Alarms a meter raises besides tampering."""
    return (EventSpec("reverse_flow"), EventSpec("leak_detected"), EventSpec("valve_closed"))


PROFILE: Profile = make_profile(
    "meter",
    fields=(electricity_meter(), water_meter(), gas_meter(), battery()),
    events=(meter_events(), tamper()),
)
