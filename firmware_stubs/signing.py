"""Command signing and verification as a device sees it (CONTRACT.md section 3).

This is the device's own implementation, written from the contract alone: it shares no code with
the gateway, so a signing bug on one side shows up as a refused command in the tests.

- ``canonical_json(obj)``: keys sorted, separators ``,`` and ``:``, UTF-8, non-ASCII not escaped.
- ``sign_command(cmd, secret_hex)``: base64url (no padding) of HMAC-SHA256 keyed with the bytes of
  the hex secret, over the canonical JSON of the command without ``sig``.
- ``verify(cmd, device_id, secret_hex, now_ms, boot_ms, seen_ids, implements=2)``: the refusal
  rules of a device, as a pure function returning an error code or ``None``.

Command rule 2 (CONTRACT.md section 3, an extension of contract version 1): a command carrying
``"rule": 2`` (covered by the signature like every other field) is executed only until its
``expires_at`` by the device's own clock; the 30 s clock-skew allowance widens only the
``issued_at`` side. Without ``rule`` (an older hub), or on firmware that predates the rule
(``implements=1``), the allowance applies on both sides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Container
from typing import Any, Final

CLOCK_SKEW_MS: Final = 30_000
"""Clock skew a device tolerates: before ``issued_at`` always, past ``expires_at`` only under
command rule 1."""
COMMAND_RULE: Final = 2
"""The newest command rule these stubs implement."""

BAD_SIGNATURE: Final = "bad_signature"
WRONG_DEVICE: Final = "wrong_device"
EXPIRED: Final = "expired"
REPLAYED: Final = "replayed"
UNKNOWN_ACTION: Final = "unknown_action"
BAD_ARGS: Final = "bad_args"

TAMPER_ERRORS: Final = frozenset({BAD_SIGNATURE, REPLAYED})
"""Refusals that also raise a ``tamper`` event on the device."""


def canonical_json(obj: Any) -> bytes:
    """The canonical encoding that signatures are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_command(cmd: dict[str, Any], secret_hex: str) -> str:
    """The ``sig`` value for ``cmd`` (any ``sig`` already in ``cmd`` is ignored)."""
    unsigned = {k: v for k, v in cmd.items() if k != "sig"}
    mac = hmac.new(bytes.fromhex(secret_hex), canonical_json(unsigned), hashlib.sha256)
    return _b64url(mac.digest())


def signed(cmd: dict[str, Any], secret_hex: str) -> dict[str, Any]:
    """A copy of ``cmd`` with its ``sig`` set."""
    out = {k: v for k, v in cmd.items() if k != "sig"}
    out["sig"] = sign_command(out, secret_hex)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify(
    cmd: Any,
    device_id: str,
    secret_hex: str,
    now_ms: int,
    boot_ms: int,
    seen_ids: Container[str],
    implements: int = COMMAND_RULE,
) -> str | None:
    """Why the device must refuse ``cmd``, or ``None`` when it may execute it.

    Checks, in this order (the first failing one is reported):

    1. ``bad_signature``: not an object, ``sig`` missing or not a string, or not the HMAC of the
       rest. Nothing else in the command is trusted before the signature is checked.
    2. ``wrong_device``: a correctly signed command addressed to another device.
    3. ``expired``: ``issued_at``/``expires_at`` missing or not integers; issued before this
       device booted (a reboot forgets the remembered ids, so older commands are refused);
       ``now`` outside ``[issued_at - 30 s, expires_at]`` under rule 2, or outside
       ``[issued_at - 30 s, expires_at + 30 s]`` under rule 1 (see :func:`rule_of`).
    4. ``replayed``: ``id`` missing, not a string, or already executed (in ``seen_ids``).

    The action itself is not checked here (``unknown_action`` is the device's business).
    """
    if not isinstance(cmd, dict):
        return BAD_SIGNATURE
    sig = cmd.get("sig")
    if not isinstance(sig, str) or not sig:
        return BAD_SIGNATURE
    try:
        expected = sign_command(cmd, secret_hex)
    except (TypeError, ValueError):
        # Not encodable as JSON (cannot happen for parsed JSON) or a bad secret.
        return BAD_SIGNATURE
    if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")):
        return BAD_SIGNATURE

    if cmd.get("device") != device_id:
        return WRONG_DEVICE

    issued_at = cmd.get("issued_at")
    expires_at = cmd.get("expires_at")
    if not _is_int(issued_at) or not _is_int(expires_at):
        return EXPIRED
    if issued_at < boot_ms:
        return EXPIRED
    if now_ms < issued_at - CLOCK_SKEW_MS or now_ms > expires_at + _late_allowance(cmd, implements):
        return EXPIRED

    cmd_id = cmd.get("id")
    if not isinstance(cmd_id, str) or not cmd_id or cmd_id in seen_ids:
        return REPLAYED
    return None


def rule_of(cmd: dict[str, Any], implements: int = COMMAND_RULE) -> int:
    """The rule that applies to ``cmd`` on firmware implementing rules up to ``implements``:
    2 when both the command (``"rule"`` >= 2) and the firmware know it, else 1."""
    v = cmd.get("rule")
    return 2 if implements >= 2 and _is_int(v) and v >= 2 else 1


def _late_allowance(cmd: dict[str, Any], implements: int) -> int:
    # rule 2: a command that waited (in a socket, in a stopped process) past its expiry is
    # never executed, so the hub's answer "not executed in time" stays true
    return 0 if rule_of(cmd, implements) >= 2 else CLOCK_SKEW_MS


def remember_until_ms(cmd: dict[str, Any], implements: int = COMMAND_RULE) -> int:
    """Until when an executed command's id must be remembered (its last acceptable instant)."""
    return int(cmd["expires_at"]) + _late_allowance(cmd, implements)
