"""Signed commands as CONTRACT.md section 3 defines them (pure functions, no I/O).

``sig`` is base64url (no padding) of HMAC-SHA256, keyed with the bytes of the device's hex
secret, over the canonical JSON of the command without ``sig``: keys sorted, separators ``,``
and ``:``, UTF-8, non-ASCII not escaped. The standard library's encoder is used on purpose: it
writes numbers the way the devices' own encoders do.

Every command carries ``"rule": 2`` (:data:`COMMAND_RULE`): a device implementing command rule 2
executes it only until ``expires_at`` by its own clock, never within the 30 s clock-skew
allowance past it. Older firmware ignores the field; the signature covers it like any other,
so it cannot be stripped to buy the allowance back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

COMMAND_RULE: Final = 2
"""The command rule (CONTRACT.md section 3) the gateway's commands are meant for."""


def canonical_json(obj: Any) -> bytes:
    """Keys sorted, separators ``,`` and ``:``, UTF-8, non-ASCII not escaped."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: Mapping[str, Any], secret_hex: str) -> str:
    """base64url (no padding) of HMAC-SHA256 over the canonical JSON without ``sig``."""
    unsigned = {k: v for k, v in command.items() if k != "sig"}
    return _mac(canonical_json(unsigned), secret_hex)


def _mac(canonical: bytes, secret_hex: str) -> str:
    mac = hmac.new(bytes.fromhex(secret_hex), canonical, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def build_signed(
    device: str,
    action: str,
    args: Mapping[str, Any],
    secret_hex: str,
    *,
    issued_at_ms: int,
    validity_ms: int,
    command_id: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A signed command and its canonical JSON (what is published), encoded once: ``sig``
    sorts after every other key, so it closes the bytes that were signed."""
    cmd: dict[str, Any] = {
        "id": command_id or str(uuid.uuid4()),
        "device": device,
        "action": action,
        "args": dict(args),
        "issued_at": issued_at_ms,
        "expires_at": issued_at_ms + validity_ms,
        "rule": COMMAND_RULE,
    }
    unsigned = canonical_json(cmd)
    cmd["sig"] = _mac(unsigned, secret_hex)
    return cmd, b'%s,"sig":"%s"}' % (unsigned[:-1], cmd["sig"].encode())
