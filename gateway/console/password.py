"""Operator passwords for the console: scrypt hashes, checked in constant time.

    .venv/bin/python -m gateway.console.password   # reads a password, prints its hash

The hash goes into ``[[console.operators]] password_hash``; the password itself is stored
nowhere. Format: ``scrypt:N:r:p:<salt hex>:<key hex>``.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets
import sys

N, R, P, DKLEN = 2**14, 8, 1, 32
# checked against when the name is unknown, so that the answer takes as long either way
_DUMMY = f"scrypt:{N}:{R}:{P}:{'00' * 16}:{'00' * DKLEN}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN)
    return f"scrypt:{N}:{R}:{P}:{salt.hex()}:{key.hex()}"


def check_format(stored: str) -> str:
    """The hash if it is one this module can check; ValueError otherwise (for the config)."""
    parts = stored.split(":")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("expected scrypt:N:r:p:salt:key (python -m gateway.console.password)")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        bytes.fromhex(parts[4])
        bytes.fromhex(parts[5])
    except ValueError:
        raise ValueError("malformed scrypt hash") from None
    if n < 2**14 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters too weak or malformed")
    return stored


def verify(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (None: an unknown name, always False)."""
    _, n, r, p, salt, key = (stored or _DUMMY).split(":")
    got = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(key) // 2,
        maxmem=256 * int(n) * int(r) + 1024 * 1024,
    )
    return hmac.compare_digest(got.hex(), key) and stored is not None


def main() -> int:
    first = getpass.getpass("Console password: ")
    if len(first) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    if getpass.getpass("Again: ") != first:
        print("the two passwords differ", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
