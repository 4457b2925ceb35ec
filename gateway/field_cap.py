"""How many distinct reading names one device may have, and the check of a message against it
(the native ingest and the adapters alike)."""

from __future__ import annotations

from devices.model import Decoded, Rejected
from gateway.store.journal import DeviceState

MAX_FIELDS_PER_DEVICE = 256
"""Distinct reading names one device may have (its ``latest`` state, the API's device answer,
its stored series): a device that keeps inventing names is dead-lettered past this, so that it
cannot grow the device list answer and the store without bound."""


def check_field_names(state: DeviceState, decoded: Decoded) -> None:
    """Rejected (``too_many_fields``) when this message would take ``state`` past
    :data:`MAX_FIELDS_PER_DEVICE` distinct reading names."""
    new = [name for name in decoded.fields if name not in state.latest]
    if len(state.latest) + len(new) > MAX_FIELDS_PER_DEVICE:
        raise Rejected(
            "too_many_fields",
            f"{state.device} has {len(state.latest)} reading names; {len(new)} new ones would"
            f" pass {MAX_FIELDS_PER_DEVICE}",
        )
