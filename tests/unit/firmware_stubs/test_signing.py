"""The device side of signed commands (CONTRACT.md section 3), checked against a vector computed
by hand with a separate HMAC tool, and each refusal rule of the verifier as a pure function."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware_stubs import signing
from firmware_stubs.signing import canonical_json, sign_command, signed, verify

SECRET = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
OTHER_SECRET = "ff" * 32
DEVICE = "gate-north"
ISSUED = 1_763_700_000_000
EXPIRES = 1_763_700_010_000
BOOT = ISSUED - 60_000

VECTOR_CMD = {
    "id": "0f8e6c2a-4b1d-4e0a-9d6f-2a7b1c3d4e5f",
    "device": "gate-north",
    "action": "unlock",
    "args": {"seconds": 5, "note": "北门"},
    "issued_at": ISSUED,
    "expires_at": EXPIRES,
}
# The canonical bytes written out by hand: sorted keys at every level, no spaces, raw UTF-8.
VECTOR_CANONICAL = (
    '{"action":"unlock","args":{"note":"北门","seconds":5},"device":"gate-north",'
    '"expires_at":1763700010000,"id":"0f8e6c2a-4b1d-4e0a-9d6f-2a7b1c3d4e5f",'
    '"issued_at":1763700000000}'
).encode()
# HMAC-SHA256 of VECTOR_CANONICAL keyed with bytes 00..1f, base64url without padding, computed
# with a command-line HMAC tool, not with this code.
VECTOR_SIG = "9aMrgSVV7n5h2_17H9W677EzSYS2nsFRJbIIStGcuNE"


def command(**overrides: Any) -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "id": "cmd-1",
        "device": DEVICE,
        "action": "unlock",
        "args": {"seconds": 5},
        "issued_at": ISSUED,
        "expires_at": EXPIRES,
    }
    cmd.update(overrides)
    return signed(cmd, SECRET)


def check(cmd: Any, now: int = ISSUED + 1_000, seen: Any = frozenset()) -> str | None:
    return verify(cmd, DEVICE, SECRET, now, BOOT, seen)


# -- canonical JSON and the signature ------------------------------------------------------------


def test_canonical_json_matches_the_hand_written_bytes() -> None:
    assert canonical_json(VECTOR_CMD) == VECTOR_CANONICAL


def test_signature_matches_the_hand_computed_vector() -> None:
    assert sign_command(VECTOR_CMD, SECRET) == VECTOR_SIG


def test_signature_ignores_an_existing_sig_field() -> None:
    assert sign_command({**VECTOR_CMD, "sig": "whatever"}, SECRET) == VECTOR_SIG


def test_signature_is_base64url_without_padding() -> None:
    for i in range(50):
        sig = sign_command({**VECTOR_CMD, "id": f"x{i}"}, SECRET)
        assert len(sig) == 43
        assert "=" not in sig and "+" not in sig and "/" not in sig


def test_key_order_of_the_input_does_not_matter() -> None:
    reordered = dict(reversed(list(VECTOR_CMD.items())))
    assert sign_command(reordered, SECRET) == VECTOR_SIG


def test_signed_survives_a_json_round_trip() -> None:
    cmd = command(args={"seconds": 7, "note": "北门 ✓"})
    assert check(json.loads(json.dumps(cmd))) is None
    assert check(json.loads(json.dumps(cmd, ensure_ascii=True))) is None


# -- the refusal rules -----------------------------------------------------------------------------


def test_a_valid_command_is_accepted() -> None:
    assert check(command()) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(args={"seconds": 30}),
        lambda c: c.update(action="open_barrier"),
        lambda c: c.update(expires_at=c["expires_at"] + 1),
        lambda c: c.update(extra=True),
        lambda c: c.pop("args"),
        lambda c: c.pop("sig"),
        lambda c: c.update(sig=""),
        lambda c: c.update(sig=None),
        lambda c: c.update(sig=123),
        lambda c: c.update(sig=c["sig"] + "="),
        lambda c: c.update(sig=c["sig"].swapcase()),
        lambda c: c.update(sig=signed(dict(c), OTHER_SECRET)["sig"]),
    ],
)
def test_bad_signature(mutate: Any) -> None:
    cmd = command()
    mutate(cmd)
    assert check(cmd) == signing.BAD_SIGNATURE


@pytest.mark.parametrize("not_a_command", [None, [], "unlock", 42, b"{}"])
def test_anything_but_an_object_is_a_bad_signature(not_a_command: Any) -> None:
    assert check(not_a_command) == signing.BAD_SIGNATURE


def test_wrong_device() -> None:
    assert check(command(device="gate-south")) == signing.WRONG_DEVICE


def test_signature_is_checked_before_the_device() -> None:
    cmd = command(device="gate-south")
    cmd["sig"] = signed(cmd, OTHER_SECRET)["sig"]
    assert check(cmd) == signing.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED, None),
        (EXPIRES, None),
        (EXPIRES + 30_000, None),  # 30 s of skew after the deadline
        (EXPIRES + 30_001, signing.EXPIRED),
        (ISSUED - 30_000, None),  # 30 s of skew before the issue time
        (ISSUED - 30_001, signing.EXPIRED),
    ],
)
def test_validity_window_with_skew(now: int, expected: str | None) -> None:
    assert check(command(), now=now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ISSUED, None),
        (EXPIRES, None),
        (EXPIRES + 1, signing.EXPIRED),  # rule 2: nothing past expires_at, whatever the skew
        (EXPIRES + 30_000, signing.EXPIRED),
        (ISSUED - 30_000, None),  # the skew allowance stays on the issue side
        (ISSUED - 30_001, signing.EXPIRED),
    ],
)
def test_rule_2_window_ends_at_expires_at(now: int, expected: str | None) -> None:
    assert check(command(rule=2), now=now) == expected


def test_rule_1_firmware_ignores_the_field_and_keeps_the_skew_after_expiry() -> None:
    late = EXPIRES + 30_000
    assert verify(command(rule=2), DEVICE, SECRET, late, BOOT, frozenset(), implements=1) is None
    assert verify(command(rule=2), DEVICE, SECRET, late + 1, BOOT, frozenset(), implements=1) == (
        signing.EXPIRED
    )


@pytest.mark.parametrize("v", [None, 1, "2", True, 2.0])
def test_only_an_integer_rule_of_2_or_more_selects_rule_2(v: Any) -> None:
    cmd = command() if v is None else command(rule=v)
    assert signing.rule_of(cmd) == 1
    assert check(cmd, now=EXPIRES + 30_000) is None
    assert signing.rule_of(command(rule=3)) == 2


def test_v_is_covered_by_the_signature() -> None:
    cmd = command(rule=2)
    downgraded = {**cmd, "rule": 1}  # an attacker buying the 30 s back
    assert check(downgraded, now=EXPIRES + 1) == signing.BAD_SIGNATURE


def test_issued_before_boot_is_refused_even_within_validity() -> None:
    cmd = command(issued_at=BOOT - 1, expires_at=BOOT + 60_000)
    assert verify(cmd, DEVICE, SECRET, BOOT + 1_000, BOOT, frozenset()) == signing.EXPIRED
    cmd = command(issued_at=BOOT, expires_at=BOOT + 60_000)
    assert verify(cmd, DEVICE, SECRET, BOOT + 1_000, BOOT, frozenset()) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"issued_at": str(ISSUED)},
        {"issued_at": float(ISSUED)},
        {"expires_at": True},
        {"expires_at": None},
        {"issued_at": None, "expires_at": None},
    ],
)
def test_timestamps_that_are_not_integers_are_refused(fields: dict[str, Any]) -> None:
    assert check(command(**fields)) == signing.EXPIRED


def test_missing_timestamps_are_refused() -> None:
    cmd = command()
    del cmd["expires_at"]
    cmd["sig"] = sign_command(cmd, SECRET)
    assert check(cmd) == signing.EXPIRED


def test_replayed() -> None:
    assert check(command(), seen={"cmd-1"}) == signing.REPLAYED
    assert check(command(), seen={"cmd-2"}) is None
    assert check(command(), seen={"cmd-1": EXPIRES + 30_000}) == signing.REPLAYED


@pytest.mark.parametrize("bad_id", [None, "", 7, ["cmd-1"]])
def test_an_id_that_cannot_be_remembered_is_refused(bad_id: Any) -> None:
    assert check(command(id=bad_id)) == signing.REPLAYED


def test_expired_wins_over_replayed() -> None:
    assert check(command(), now=EXPIRES + 60_000, seen={"cmd-1"}) == signing.EXPIRED


def test_verify_is_pure() -> None:
    seen = {"other": EXPIRES}
    cmd = command()
    before = json.dumps(cmd, sort_keys=True)
    assert check(cmd, seen=seen) is None
    assert seen == {"other": EXPIRES}
    assert json.dumps(cmd, sort_keys=True) == before


def test_ids_are_remembered_until_the_last_acceptable_instant() -> None:
    assert signing.remember_until_ms(command()) == EXPIRES + signing.CLOCK_SKEW_MS
    assert signing.remember_until_ms(command(rule=2)) == EXPIRES
    old_firmware = signing.remember_until_ms(command(rule=2), implements=1)
    assert old_firmware == EXPIRES + signing.CLOCK_SKEW_MS


def test_a_bad_secret_refuses_everything() -> None:
    assert verify(command(), DEVICE, "not-hex", ISSUED, BOOT, frozenset()) == signing.BAD_SIGNATURE
