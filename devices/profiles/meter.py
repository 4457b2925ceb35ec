"""Utility meters: electricity, water and gas; no commands."""

from __future__ import annotations

from devices.profile import EventSpec, FieldSpec, Profile, battery, common, make_profile, tamper


def electricity_meter() -> tuple[FieldSpec, ...]:
    """Cumulative import energy, and instantaneous power, voltage and current."""
    return (
        FieldSpec("energy_kwh", "kWh", kind="counter"),
        FieldSpec("power_w", "W"),
        FieldSpec("voltage_v", "V"),
        FieldSpec("current_a", "A"),
    )


def electricity_details() -> tuple[FieldSpec, ...]:
    """Export, daily and per-phase values of electricity meters and metering plugs
    (CONTRACT.md 7.3), and the relay a plug or sub-meter switches."""
    return (
        FieldSpec("energy_export_kwh", "kWh", kind="counter"),
        FieldSpec("energy_today_kwh", "kWh"),
        FieldSpec("energy_yesterday_kwh", "kWh"),
        FieldSpec("power_l1_w", "W"),
        FieldSpec("power_l2_w", "W"),
        FieldSpec("power_l3_w", "W"),
        FieldSpec("apparent_power_va", "VA"),
        FieldSpec("reactive_power_var", "var"),
        FieldSpec("power_factor", ""),
        FieldSpec("voltage_l2_v", "V"),
        FieldSpec("voltage_l3_v", "V"),
        FieldSpec("current_l2_a", "A"),
        FieldSpec("current_l3_a", "A"),
        FieldSpec("frequency_hz", "Hz"),
        FieldSpec("relay_on", "", "bool"),
    )


def leak_sensor() -> tuple[FieldSpec, ...]:
    """A water leak sensor: ``leak`` true while it is wet."""
    return (FieldSpec("leak", "", "bool"),)


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
    fields=(
        electricity_meter(),
        electricity_details(),
        water_meter(),
        gas_meter(),
        leak_sensor(),
        battery(),
        common(),
    ),
    events=(meter_events(), tamper()),
)
