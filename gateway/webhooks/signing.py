"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class Signer:
    """Signs bodies for one endpoint; the secret is ``whsec_`` + base64 (or raw base64)."""

    def __init__(self, secret: str) -> None:
        self._wh = Webhook(secret)

    def headers(self, msg_id: str, at_s: float, body: bytes) -> dict[str, str]:
        ts = datetime.fromtimestamp(int(at_s), UTC)
        return {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at_s)),
            "webhook-signature": self._wh.sign(msg_id, ts, body.decode()),
        }


def check_secret(secret: str) -> None:
    """Raise ``ValueError`` if the secret cannot sign (empty or not base64)."""
    try:
        Webhook(secret)
    except Exception as exc:
        raise ValueError("expected a Standard Webhooks secret: whsec_ followed by base64") from exc
