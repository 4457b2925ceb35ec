"""Authentication and the authorisation matrix (resident JWTs, platform keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import ValidationError

from gateway.auth import Authenticator, AuthError, Principal, may_operate
from gateway.config import AuthSettings, ConfigError, load_settings

SECRET = "resident-token-secret-0123456789abcdef"
AUD = "courtyard-gateway"
ISS = "https://residents.example"
PLATFORM_ALL = "platform-key-all-0123456789"
PLATFORM_C2 = "platform-key-c2-only-0123456"


def settings(**kw: object) -> AuthSettings:
    base: dict[str, object] = {
        "jwt_secret": SECRET,
        "jwt_audience": AUD,
        "jwt_issuer": ISS,
        "platform_keys": [PLATFORM_ALL, {"key": PLATFORM_C2, "communities": ["c2"]}],
    }
    return AuthSettings.model_validate({**base, **kw})


def token(secret: str = SECRET, alg: str = "HS256", **claims: object) -> str:
    body: dict[str, object] = {
        "sub": "r-42",
        "community": "c1",
        "building": "b3",
        "unit": "b3-0101",
        "exp": int(time.time()) + 600,
        "aud": AUD,
        "iss": ISS,
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm=alg)


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator(settings(), ["c1", "c2"])


# -- who -----------------------------------------------------------------------------------------


def test_resident_token_gives_a_resident_bound_to_community_and_building(auth):
    p = auth.authenticate(token(jti="t-1"))
    assert p == Principal(
        "resident",
        "r-42",
        frozenset({"c1"}),
        building="b3",
        unit="b3-0101",
        credential="jwt:t-1",
    )


def test_credential_never_contains_the_token(auth):
    t = token()
    p = auth.authenticate(t)
    assert p.credential.startswith("jwt#")
    assert t not in p.credential and t.split(".")[2] not in p.credential


def test_platform_keys_and_their_scope(auth):
    assert auth.authenticate(PLATFORM_ALL).communities is None
    scoped = auth.authenticate(PLATFORM_C2)
    assert scoped.kind == "platform" and scoped.communities == frozenset({"c2"})


def test_expired_token_is_refused(auth):
    with pytest.raises(AuthError, match="expired"):
        auth.authenticate(token(exp=int(time.time()) - 3600))


def test_token_without_exp_is_refused(auth):
    with pytest.raises(AuthError):
        auth.authenticate(token(exp=None))


def test_wrong_secret_is_refused(auth):
    with pytest.raises(AuthError):
        auth.authenticate(token(secret="another-secret-of-the-same-length-000"))


def test_a_verified_token_is_remembered_until_exp_plus_leeway_and_then_refused():
    now = [time.time()]
    auth = Authenticator(settings(jwt_leeway_s=30), ["c1"], clock=lambda: now[0])
    exp = int(now[0]) + 60
    t = token(exp=exp, jti="t-9")
    first = auth.authenticate(t)
    assert auth.authenticate(t) is first  # the remembered principal: not verified again
    now[0] = exp + 29.0  # inside the leeway
    assert auth.authenticate(t) is first
    now[0] = exp + 30.5
    with pytest.raises(AuthError, match="expired"):
        auth.authenticate(t)


def test_a_refused_token_is_not_remembered_and_a_tampered_one_misses_the_cache(auth):
    good = token()
    auth.authenticate(good)
    head, body, sig = good.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    for _ in range(2):  # the second attempt is verified again, and refused again
        with pytest.raises(AuthError):
            auth.authenticate(tampered)


def test_the_token_cache_is_bounded(monkeypatch):
    import gateway.auth as auth_module

    monkeypatch.setattr(auth_module, "TOKEN_CACHE", 8)
    auth = Authenticator(settings(), ["c1"])
    for i in range(20):
        auth.authenticate(token(sub=f"r-{i}"))
    assert len(auth._verified) == 8


def _unsigned(claims: dict[str, object]) -> str:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_alg_none_and_unsigned_tokens_are_refused(auth):
    claims = {"sub": "r-42", "community": "c1", "building": "b3", "exp": int(time.time()) + 60}
    with pytest.raises(AuthError):
        auth.authenticate(_unsigned(claims))
    # the signature part stripped from a valid token
    head, body, _ = token().split(".")
    with pytest.raises(AuthError):
        auth.authenticate(f"{head}.{body}.")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_algorithm_is_fixed_by_configuration_not_by_the_token(auth):
    # the same secret with HS512: the token asks for another algorithm, refused
    with pytest.raises(AuthError):
        auth.authenticate(token(alg="HS512"))


def test_unknown_community_or_missing_claims_are_refused(auth):
    with pytest.raises(AuthError):
        auth.authenticate(token(community="c9"))
    with pytest.raises(AuthError):
        auth.authenticate(token(community=None))
    with pytest.raises(AuthError):
        auth.authenticate(token(sub=None))


def test_garbage_and_no_resident_config():
    with pytest.raises(AuthError):
        Authenticator(settings(), ["c1"]).authenticate("not-a-token")
    no_jwt = Authenticator(settings(jwt_secret=""), ["c1"])
    with pytest.raises(AuthError):
        no_jwt.authenticate(token())


def _pem(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_public_key_tokens(tmp_path, kind):
    if kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        alg = "RS256"
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        alg = "EdDSA"
    pem = tmp_path / "jwt.pem"
    pem.write_bytes(_pem(private.public_key()))
    auth = Authenticator(settings(jwt_secret="", jwt_public_key_file=str(pem)), ["c1"])
    assert auth.algorithm == alg
    claims = {"sub": "r-1", "community": "c1", "building": "b3", "exp": int(time.time()) + 60}
    claims |= {"aud": AUD, "iss": ISS}
    assert auth.authenticate(jwt.encode(claims, private, algorithm=alg)).name == "r-1"
    # algorithm confusion: an HS256 token keyed with the public key's PEM text
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sig = hmac.new(pem.read_bytes(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    with pytest.raises(AuthError):
        auth.authenticate(forged)


def test_bad_public_key_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="jwt_public_key_file"):
        Authenticator(settings(jwt_secret="", jwt_public_key_file=str(bad)))


def test_secret_and_public_key_together_are_refused_by_config():
    with pytest.raises(ValueError, match="not both"):
        settings(jwt_public_key_file="/tmp/x.pem")


# -- what: the matrix ------------------------------------------------------------------------------

B3 = Principal("resident", "r-42", frozenset({"c1"}), building="b3", unit="b3-0101")
DOORS = {
    "b3-entrance": ("c1", "b3", "access"),
    "b5-entrance": ("c1", "b5", "access"),
    "gate-north": ("c1", "", "access"),
    "other-gate": ("c2", "", "access"),
    "other-b3": ("c2", "b3", "access"),
    "barrier-1": ("c1", "", "parking"),
    "locker-1": ("c1", "b3", "locker"),
}


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("b3-entrance", ""),
        ("gate-north", ""),
        ("b5-entrance", "other_building"),
        ("other-gate", "other_community"),
        ("other-b3", "other_community"),
        ("barrier-1", "not_a_door"),
        ("locker-1", "not_a_door"),
    ],
)
def test_resident_of_b3(device, expected):
    assert may_operate(B3, *DOORS[device]) == expected


def test_resident_with_a_verified_token_goes_through_the_same_matrix(auth):
    p = auth.authenticate(token())
    assert may_operate(p, *DOORS["b3-entrance"]) == ""
    assert may_operate(p, *DOORS["b5-entrance"]) == "other_building"
    assert may_operate(p, *DOORS["other-gate"]) == "other_community"


def test_platform_keys_are_scoped_to_their_communities(auth):
    everything = auth.authenticate(PLATFORM_ALL)
    c2 = auth.authenticate(PLATFORM_C2)
    for device in DOORS.values():
        assert may_operate(everything, *device) == ""
    assert may_operate(c2, *DOORS["other-gate"]) == ""
    assert may_operate(c2, *DOORS["barrier-1"]) == "other_community"


# -- audience, issuer, lifetime, revocation, secrets (issue 13, finding 9) ----------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-service"},
        {"aud": None},
        {"iss": "https://someone-else.example"},
        {"iss": None},
    ],
)
def test_a_token_for_another_audience_or_from_another_issuer_is_refused(auth, claims):
    with pytest.raises(AuthError):
        auth.authenticate(token(**claims))


def test_an_audience_list_naming_this_gateway_is_accepted(auth):
    assert auth.authenticate(token(aud=["billing", AUD])).name == "r-42"


def test_token_lifetime_is_capped():
    auth = Authenticator(settings(jwt_max_lifetime_s=3600), ["c1"])
    now = int(time.time())
    with pytest.raises(AuthError, match="exp too far ahead"):
        auth.authenticate(token(exp=253402300799))  # the year 9999
    with pytest.raises(AuthError, match="exp too far ahead"):
        auth.authenticate(token(exp=now + 3600 + 31 + 5))
    with pytest.raises(AuthError, match="lifetime too long"):
        auth.authenticate(token(iat=now - 7200, exp=now + 600))  # minted for 2 h 10 min
    assert auth.authenticate(token(iat=now, exp=now + 3600)).name == "r-42"


class Revoked(dict[tuple[str, str], int]):
    def before(self, community: str, sub: str) -> int | None:
        return self.get((community, sub))


def test_a_revoked_resident_is_refused_even_for_a_remembered_token():
    revoked = Revoked()
    now = [time.time()]
    auth = Authenticator(
        settings(), ["c1", "c2"], clock=lambda: now[0], revoked_before=revoked.before
    )
    old = token(iat=int(now[0]) - 60)
    assert auth.authenticate(old).name == "r-42"  # verified and remembered
    revoked[("c1", "r-42")] = int(now[0] * 1000)
    with pytest.raises(AuthError, match="revoked"):
        auth.authenticate(old)
    # the same sub in another community is another person
    assert auth.authenticate(token(iat=int(now[0]) - 60, community="c2")).name == "r-42"
    # a token issued after the revocation is accepted again
    assert auth.authenticate(token(iat=int(now[0]) + 1, exp=int(now[0]) + 600)).name == "r-42"


def test_a_token_without_iat_counts_as_issued_as_early_as_the_cap_allows():
    revoked = Revoked()
    now = time.time()
    auth = Authenticator(settings(jwt_max_lifetime_s=3600), ["c1"], revoked_before=revoked.before)
    revoked[("c1", "r-42")] = int(now * 1000)
    # exp 10 minutes ahead: issued at the latest ... 50 minutes ago, before the revocation
    with pytest.raises(AuthError, match="revoked"):
        auth.authenticate(token(exp=int(now) + 600))


@pytest.mark.parametrize(
    ("alg", "secret"),
    [("HS256", "x"), ("HS256", "a" * 31), ("HS384", "a" * 47), ("HS512", "a" * 63)],
)
def test_short_hmac_secrets_are_refused_by_the_config(alg, secret):
    with pytest.raises(ValidationError, match="jwt_secret is too short"):
        settings(jwt_secret=secret, jwt_algorithm=alg)


@pytest.mark.parametrize("missing", ["jwt_audience", "jwt_issuer"])
def test_resident_tokens_need_an_audience_and_an_issuer(missing):
    with pytest.raises(ValidationError, match=f"auth.{missing} is required"):
        settings(**{missing: ""})
    AuthSettings(platform_keys=[PLATFORM_ALL])  # no resident tokens: neither is needed


def test_check_config_names_the_missing_key(tmp_path):
    cfg = tmp_path / "courtyard.toml"
    cfg.write_text(f'[auth]\njwt_secret = "{SECRET}"\njwt_issuer = "{ISS}"\n')
    with pytest.raises(ConfigError, match="jwt_audience") as err:
        load_settings(cfg, {})
    assert SECRET not in str(err.value)
    cfg.write_text(f'[auth]\njwt_secret = "short"\njwt_audience = "a"\njwt_issuer = "{ISS}"\n')
    with pytest.raises(ConfigError, match="jwt_secret is too short") as err:
        load_settings(cfg, {})
    assert 'short"' not in str(err.value) and "'short'" not in str(err.value)


# -- platform key scopes (issue 13, finding 17) ----------------------------------------------


def test_scopes_of_platform_keys():
    metrics_only, c1_reader = "metrics-only-key-0123456789", "c1-reader-key-0123456789"
    auth = Authenticator(
        settings(
            platform_keys=[
                PLATFORM_ALL,
                {"key": PLATFORM_C2, "communities": ["c2"]},
                {"key": metrics_only, "scopes": ["metrics"]},
                {"key": c1_reader, "communities": ["c1"], "scopes": ["read"]},
            ]
        ),
        ["c1", "c2"],
    )
    every = auth.authenticate(PLATFORM_ALL)
    assert all(every.allows(s) for s in ("read", "write", "command", "metrics"))
    c2 = auth.authenticate(PLATFORM_C2)  # no scopes: as before, but /metrics only for all
    assert c2.allows("command") and not c2.allows("metrics")
    m = auth.authenticate(metrics_only)
    assert m.allows("metrics") and not any(m.allows(s) for s in ("read", "write", "command"))
    r = auth.authenticate(c1_reader)
    assert r.allows("read") and not any(r.allows(s) for s in ("write", "command", "metrics"))
    assert not auth.authenticate(token()).allows("metrics")
    with pytest.raises(ValidationError):
        settings(platform_keys=[{"key": PLATFORM_ALL, "scopes": ["admin"]}])
