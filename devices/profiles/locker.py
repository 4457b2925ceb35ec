"""Parcel lockers: compartment counts, parcel events, ``open_compartment``."""

from __future__ import annotations

from devices.profile import (
    AttrSpec,
    CommandSpec,
    EventSpec,
    FieldSpec,
    Profile,
    common,
    make_profile,
    tamper,
)


def compartments() -> tuple[FieldSpec, ...]:
    """Free and total compartments."""
    return (FieldSpec("free_compartments", ""), FieldSpec("total_compartments", ""))


def parcel_events() -> tuple[EventSpec, ...]:
    """Parcels in and out, and compartment faults."""
    compartment = AttrSpec("compartment", "id", required=True)
    parcel_id = AttrSpec("parcel_id", "string")
    return (
        EventSpec("parcel_deposited", (compartment, parcel_id, AttrSpec("unit", "string"))),
        EventSpec("parcel_picked_up", (compartment, parcel_id)),
        EventSpec("compartment_jammed", (compartment,)),
        EventSpec("compartment_left_open", (compartment,)),
    )


def open_compartment() -> tuple[CommandSpec, ...]:
    """Open one compartment."""
    return (CommandSpec("open_compartment", (AttrSpec("compartment", "id", required=True),)),)


PROFILE: Profile = make_profile(
    "locker",
    fields=(compartments(), common()),
    events=(parcel_events(), tamper()),
    commands=(open_compartment(),),
)
