"""Parking: space sensors, lot counters, barrier lanes, ``open_barrier``."""

from __future__ import annotations

from devices.profile import (
    AttrSpec,
    CommandSpec,
    EventSpec,
    FieldSpec,
    Profile,
    battery,
    common,
    make_profile,
    tamper,
)


def space_sensor() -> tuple[FieldSpec, ...]:
    """A single space: occupied or not."""
    return (FieldSpec("occupied", "", "bool"),)


def lot_counter() -> tuple[FieldSpec, ...]:
    """A lot: free and total spaces."""
    return (FieldSpec("free_spaces", ""), FieldSpec("total_spaces", ""))


def lane_events() -> tuple[EventSpec, ...]:
    """Vehicles passing a lane, and barrier faults."""
    plate = AttrSpec("plate", "string", nullable=True)  # null: the camera read no plate
    lane = AttrSpec("lane", "id")
    confidence = AttrSpec("confidence", "number", minimum=0, maximum=100)
    seen = (
        plate,
        lane,
        confidence,
        AttrSpec("plate_color", "string"),
        AttrSpec("direction", "string"),
        AttrSpec("picture", "string"),  # the URL of the snapshot kept by the gateway
    )
    return (
        EventSpec("vehicle_entered", seen),
        EventSpec("vehicle_exited", seen),
        EventSpec("barrier_fault", (lane,)),
    )


def open_barrier() -> tuple[CommandSpec, ...]:
    """Open the barrier of ``lane``."""
    return (CommandSpec("open_barrier", (AttrSpec("lane", "id", required=True),)),)


PROFILE: Profile = make_profile(
    "parking",
    fields=(space_sensor(), lot_counter(), battery(), common()),
    events=(lane_events(), tamper()),
    commands=(open_barrier(),),
)
