"""Who is calling, and what they may operate.

Two kinds of credentials reach the API with ``Authorization: Bearer``:

- a **platform key** (the property platform), compared in constant time, scoped to its
  communities (or all of them);
- a **resident JWT**, verified with the configured HS256 secret or public key. The algorithm is
  fixed by the configuration and never read from the token, so ``alg: none`` and algorithm
  confusion are refused; ``exp``, ``sub``, ``community`` and the configured ``aud`` and
  ``iss`` are required, and ``exp`` may lie at most ``jwt_max_lifetime_s`` ahead (and after
  ``iat``). A resident revoked by ``sub`` in a community (:mod:`gateway.revocation`) is
  refused for every token issued before the revocation's time.

Authorisation is checked on the object on every request (:func:`may_operate`): a resident may
open the gates of their own community (``building`` empty) and the entrance of their own
building, nothing else; a platform key may operate every device of its communities.

Nothing here logs or echoes a token: a resident's credential is named by its ``jti`` claim or a
short hash of the token.

A verified resident token is remembered (at most ``TOKEN_CACHE`` of them, keyed by the token's
SHA-256) until its ``exp`` plus the leeway: an app repeats the same token on every call, and
verifying it again costs more than the rest of an unlock request. A remembered token is still
refused the moment it expires; a token that failed verification is never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.config import AuthSettings, ConfigError

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PLATFORM = "platform"
RESIDENT = "resident"
READ, METRICS, WRITE, COMMAND = "read", "metrics", "write", "command"
TOKEN_CACHE = 4096


class AuthError(Exception):
    """A credential that authenticates nobody. The message is safe to show (no token in it)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``kind`` is ``platform`` or ``resident``; ``name`` the key's name or the resident's ``sub``;
    ``communities`` None means every community; ``credential`` names the credential used (a
    key name, a token's ``jti`` or hash prefix), never the secret itself.
    """

    kind: str
    name: str
    communities: frozenset[str] | None
    building: str = ""
    unit: str = ""
    credential: str = ""
    # a platform key's scopes (``read``, ``metrics``, ``write``, ``command``); None: a key
    # configured without scopes, which may read, write and command, and read /metrics only
    # if it reaches every community
    scopes: frozenset[str] | None = None

    def may_see(self, community: str) -> bool:
        return self.communities is None or community in self.communities

    def allows(self, scope: str) -> bool:
        """Whether this caller's scopes cover ``scope`` (see :attr:`scopes`)."""
        if self.scopes is not None:
            return scope in self.scopes
        if scope == METRICS:
            return self.communities is None
        return True

    @property
    def is_resident(self) -> bool:
        return self.kind == RESIDENT


def may_operate(principal: Principal, community: str, building: str, device_class: str) -> str:
    """Why ``principal`` may not operate this device (``""``: it may).

    Residents: access devices only; a gate (``building`` empty) of their own community, or the
    entrance of their own building in their own community. Platform keys: any device of their
    communities.
    """
    if not principal.may_see(community):
        return "other_community"
    if not principal.is_resident:
        return ""
    if device_class != "access":
        return "not_a_door"
    if building and building != principal.building:
        return "other_building"
    return ""


def _algorithm_for_key(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256"
    raise ConfigError("auth.jwt_public_key_file: expected an RSA, P-256 or Ed25519 public key")


class Authenticator:
    """Turns a bearer token into a :class:`Principal`, or raises :class:`AuthError`.

    ``communities``: the known communities (a token naming another one is refused); empty
    means any well-formed id.
    """

    def __init__(
        self,
        settings: AuthSettings,
        communities: Collection[str] = (),
        *,
        clock: Callable[[], float] = time.time,
        revoked_before: Callable[[str, str], int | None] | None = None,
    ) -> None:
        self.settings = settings
        self.communities = frozenset(communities)
        self._clock = clock
        # (community, sub) -> tokens issued before this epoch ms are revoked (None: none)
        self._revoked_before = revoked_before or (lambda _community, _sub: None)
        # sha256(token) -> (principal, the moment it stops being accepted, issued at in ms)
        self._verified: OrderedDict[bytes, tuple[Principal, float, float]] = OrderedDict()
        self._platform = [
            (
                k.key.encode(),
                f"platform-key-{i}",
                None if k.communities is None else frozenset(k.communities),
                None if k.scopes is None else frozenset(k.scopes),
            )
            for i, k in enumerate(settings.platform_keys)
        ]
        self._key: Any = None
        self._algorithm = ""
        if settings.jwt_secret:
            self._key = settings.jwt_secret.encode()
            self._algorithm = settings.jwt_algorithm or "HS256"
        elif settings.jwt_public_key_file:
            try:
                pem = Path(settings.jwt_public_key_file).read_bytes()
                self._key = load_pem_public_key(pem)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"auth.jwt_public_key_file = {settings.jwt_public_key_file!r}: cannot read a"
                    f" PEM public key ({type(exc).__name__})"
                ) from None
            self._algorithm = settings.jwt_algorithm or _algorithm_for_key(self._key)

    @property
    def algorithm(self) -> str:
        """The one algorithm resident tokens must use (``""``: resident tokens are off)."""
        return self._algorithm

    def authenticate(self, token: str) -> Principal:
        raw = token.encode()
        for key, name, scope, scopes in self._platform:
            if hmac.compare_digest(raw, key):
                return Principal(PLATFORM, name, scope, credential=name, scopes=scopes)
        if self._key is None or token.count(".") != 2:
            raise AuthError("invalid token")
        return self._resident(token)

    def _resident(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            principal, until, issued_ms = hit
            if self._clock() >= until:
                del self._verified[digest]
                raise AuthError("token expired")
            self._verified.move_to_end(digest)
        else:
            principal, exp, issued_ms = self._verify(token, digest)
            self._verified[digest] = (principal, exp + self.settings.jwt_leeway_s, issued_ms)
            if len(self._verified) > TOKEN_CACHE:
                self._verified.popitem(last=False)
        # checked on every use, remembered or not: a revocation applies at once
        (community,) = principal.communities or ("",)
        before = self._revoked_before(community, principal.name)
        if before is not None and issued_ms < before:
            raise AuthError("token revoked")
        return principal

    def _verify(self, token: str, digest: bytes) -> tuple[Principal, float, float]:
        """PyJWT's full check (signature, ``exp``, ``aud``, ``iss``), the lifetime cap, then
        the claims this gateway needs; also returns ``exp`` and when the token was issued
        (epoch ms: ``iat``, or without it the earliest the cap allows, ``exp`` minus the
        longest lifetime, so that a revocation never misses a token)."""
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                options={"require": ["exp", "sub", "aud", "iss"]},
                leeway=s.jwt_leeway_s,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token ({type(exc).__name__})") from None
        exp, iat = claims["exp"], claims.get("iat")
        longest = s.jwt_max_lifetime_s + s.jwt_leeway_s
        if not isinstance(exp, int | float) or exp - self._clock() > longest:
            raise AuthError("invalid token (exp too far ahead)")
        if iat is not None and (not isinstance(iat, int | float) or exp - iat > longest):
            raise AuthError("invalid token (lifetime too long)")
        issued_ms = 1000.0 * (iat if iat is not None else exp - s.jwt_max_lifetime_s)
        sub, community = claims.get("sub"), claims.get("community")
        building, unit = claims.get("building", ""), claims.get("unit", "")
        if not isinstance(sub, str) or not sub or len(sub) > 128:
            raise AuthError("invalid token (sub)")
        if not isinstance(community, str) or not ID_RE.fullmatch(community):
            raise AuthError("invalid token (community)")
        if self.communities and community not in self.communities:
            raise AuthError("invalid token (unknown community)")
        if not isinstance(building, str) or not isinstance(unit, str):
            raise AuthError("invalid token (building, unit)")
        jti = claims.get("jti")
        if isinstance(jti, str) and jti and len(jti) <= 128:
            credential = f"jwt:{jti}"
        else:
            credential = "jwt#" + digest.hex()[:16]
        principal = Principal(
            RESIDENT,
            sub,
            frozenset({community}),
            building=building,
            unit=unit,
            credential=credential,
        )
        return principal, float(exp), issued_ms
