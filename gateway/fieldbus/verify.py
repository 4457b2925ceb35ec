"""Signed-command checks as a device makes them (CONTRACT.md section 3), for devices the bridge
speaks for. The bridge holds each locker's secret from the configuration and refuses exactly what
the device itself would: ``bad_signature``, ``wrong_device``, ``expired``, ``replayed``.

It implements command rule 2: a command carrying ``"rule": 2`` runs only until its
``expires_at`` (the bridge's clock is the gateway's), never in the 30 s clock-skew allowance
past it, so a lock command that waited on a busy bus past the gateway's 504 is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

CLOCK_SKEW_MS = 30_000
TAMPER = frozenset(("bad_signature", "replayed"))


def late_allowance_ms(cmd: dict[str, Any]) -> int:
    """How long after ``expires_at`` the command may still run: none under command rule 2
    (``"rule"`` an integer >= 2), the clock-skew allowance for commands without it."""
    rule = cmd.get("rule")
    return 0 if type(rule) is int and rule >= 2 else CLOCK_SKEW_MS


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(cmd: dict[str, Any], secret_hex: str) -> str:
    body = canonical({k: v for k, v in cmd.items() if k != "sig"})
    mac = hmac.new(bytes.fromhex(secret_hex), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


class CommandGuard:
    """Verification plus the memory of executed ids (until they expire)."""

    def __init__(self, device: str, secret_hex: str, boot_ms: int) -> None:
        self.device = device
        self._secret = secret_hex
        self.boot_ms = boot_ms
        self._seen: dict[str, int] = {}

    def check(self, cmd: Any, now_ms: int) -> str | None:
        """The refusal code, or None when the command may run (its id is then remembered)."""
        if not isinstance(cmd, dict):
            return "bad_signature"
        sig = cmd.get("sig")
        if not isinstance(sig, str) or not sig:
            return "bad_signature"
        try:
            expected = signature(cmd, self._secret)
        except (TypeError, ValueError):
            return "bad_signature"
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            return "bad_signature"
        if cmd.get("device") != self.device:
            return "wrong_device"
        issued, expires = cmd.get("issued_at"), cmd.get("expires_at")
        if not (type(issued) is int and type(expires) is int):
            return "expired"
        late = late_allowance_ms(cmd)
        if issued < self.boot_ms or not issued - CLOCK_SKEW_MS <= now_ms <= expires + late:
            return "expired"
        cmd_id = cmd.get("id")
        self._seen = {k: v for k, v in self._seen.items() if v >= now_ms}
        if not isinstance(cmd_id, str) or not cmd_id or cmd_id in self._seen:
            return "replayed"
        self._seen[cmd_id] = expires + late
        return None
