"""The HTTP-push adapters by name (CONTRACT.md section 7.2): the gateway's
``POST /api/v1/ingest/{adapter}`` looks its adapter up here."""

from __future__ import annotations

from collections.abc import Mapping

from devices.adapters import anpr, hikvision, httpbody, lpr_2n, vzenith
from devices.adapters.base import Adapter

HTTP_ADAPTERS: Mapping[str, Adapter] = {
    lpr_2n.NAME: lpr_2n.ADAPTER,
    hikvision.NAME: hikvision.ADAPTER,
    anpr.NAME: anpr.ADAPTER,
    vzenith.NAME: vzenith.ADAPTER,
}

HTTP_REASONS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (*httpbody.REASONS, *lpr_2n.REASONS, *hikvision.REASONS, *anpr.REASONS, *vzenith.REASONS)
    )
)
"""Every reason an HTTP adapter's decoder may reject a body with (the dead letters' and the
``courtyard_dead_letters_total`` counter's ``reason``)."""
