"""Door controllers and gates: door and lock state, access events, ``unlock``."""

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

METHODS = ("card", "pin", "face", "qr", "remote", "button", "key", "fingerprint")
"""How a door was opened."""


def door() -> tuple[FieldSpec, ...]:
    """Door contact and lock state."""
    return (FieldSpec("door_open", "", "bool"), FieldSpec("locked", "", "bool"))


def door_events() -> tuple[EventSpec, ...]:
    """Door, credential and intercom events."""
    method = AttrSpec("method", "string", choices=METHODS)
    credential = AttrSpec("credential", "string")
    person = AttrSpec("person", "string")
    return (
        EventSpec("door_opened", (method,)),
        EventSpec("door_closed"),
        EventSpec("door_forced"),
        # a controller reports that its threshold passed, not how long: seconds may be absent
        EventSpec("door_held_open", (AttrSpec("seconds", "number", minimum=0),)),
        EventSpec("access_granted", (credential, method, person)),
        EventSpec("access_denied", (credential, method, person, AttrSpec("reason", "string"))),
        EventSpec("intercom_call", (AttrSpec("unit", "string"),)),
    )


ACCESS_DENIED_REASONS = (
    *("unknown_credential", "no_permission", "expired", "blocklisted", "outside_schedule"),
    "other",
)
"""The ``reason`` of an adapter's ``access_denied`` (CONTRACT.md 7.3); native devices may name
their own."""


def lock_events() -> tuple[EventSpec, ...]:
    """The lock released or engaged (by a credential, a button, a command), duress, and the
    events an adapter has no name for yet (``major``/``minor``: the vendor's code)."""
    method = AttrSpec("method", "string", choices=METHODS)
    return (
        EventSpec("door_unlocked", (method, AttrSpec("person", "string"))),
        EventSpec("door_locked", (method,)),
        EventSpec("duress", (AttrSpec("person", "string"),)),
        EventSpec("other"),
    )


def unlock() -> tuple[CommandSpec, ...]:
    """Unlock for ``seconds`` (1..30)."""
    seconds = AttrSpec("seconds", "integer", required=True, minimum=1, maximum=30)
    return (CommandSpec("unlock", (seconds,)),)


PROFILE: Profile = make_profile(
    "access",
    fields=(door(), battery(), common()),
    events=(door_events(), lock_events(), tamper()),
    commands=(unlock(),),
)
