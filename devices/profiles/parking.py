"""Parking: space sensors, lot counters, barrier lanes, ``open_barrier``."""

from __future__ import annotations

from devices.profile import (
    AttrSpec,
    CommandSpec,
    EventSpec,
    FieldSpec,
    Profile,
    battery,
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
    plate = AttrSpec("plate", "string")
    lane = AttrSpec("lane", "id")
    return (
        EventSpec("vehicle_entered", (plate, lane, AttrSpec("confidence", "number"))),
        EventSpec("vehicle_exited", (plate, lane)),
        EventSpec("barrier_fault", (lane,)),
    )


def open_barrier() -> tuple[CommandSpec, ...]:
    """Open the barrier of ``lane``."""
    return (CommandSpec("open_barrier", (AttrSpec("lane", "id", required=True),)),)


PROFILE: Profile = make_profile(
    "parking",
    fields=(space_sensor(), lot_counter(), battery()),
    events=(lane_events(), tamper()),
    commands=(open_barrier(),),
)
