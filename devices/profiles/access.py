"""Door controllers and gates: door and lock state, access events, ``unlock``."""

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

METHODS = ("card", "pin", "face", "qr", "remote", "button", "key")
"""How a door was opened."""


def door() -> tuple[FieldSpec, ...]:
    """Door contact and lock state."""
    return (FieldSpec("door_open", "", "bool"), FieldSpec("locked", "", "bool"))


def door_events() -> tuple[EventSpec, ...]:
    """Door, credential and intercom events."""
    method = AttrSpec("method", "string", choices=METHODS)
    credential = AttrSpec("credential", "string")
    return (
        EventSpec("door_opened", (method,)),
        EventSpec("door_closed"),
        EventSpec("door_forced"),
        EventSpec("door_held_open", (AttrSpec("seconds", "number", required=True, minimum=0),)),
        EventSpec("access_granted", (credential, method)),
        EventSpec("access_denied", (credential, method, AttrSpec("reason", "string"))),
        EventSpec("intercom_call", (AttrSpec("unit", "string"),)),
    )


def unlock() -> tuple[CommandSpec, ...]:
    """Unlock for ``seconds`` (1..30)."""
    seconds = AttrSpec("seconds", "integer", required=True, minimum=1, maximum=30)
    return (CommandSpec("unlock", (seconds,)),)


PROFILE: Profile = make_profile(
    "access",
    fields=(door(), battery()),
    events=(door_events(), tamper()),
    commands=(unlock(),),
)
