"""The bridge refuses exactly what a device refuses (checked against the device-side signer)."""

from __future__ import annotations

from typing import Any

from firmware_stubs.signing import signed, verify
from gateway.fieldbus.verify import CommandGuard, late_allowance_ms

SECRET = "0f" * 16
NOW = 1_800_000_000_000


def cmd(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "c-1",
        "device": "lk-1",
        "action": "open_compartment",
        "args": {"compartment": 3},
        "issued_at": NOW,
        "expires_at": NOW + 10_000,
    }
    base.update(kw)
    return signed(base, SECRET)


def test_same_verdicts_as_the_device() -> None:
    cases = [
        cmd(),
        {**cmd(), "sig": "x"},
        {**cmd(), "args": {"compartment": 4}},
        cmd(device="other"),
        cmd(issued_at=NOW - 120_000, expires_at=NOW - 60_000),
        cmd(issued_at=NOW - 10**7),
        cmd(id=7),
        "not a dict",
        cmd(issued_at="soon"),
        {**cmd(), "cafe": "€"},
    ]
    for i, c in enumerate(cases):
        guard = CommandGuard("lk-1", SECRET, NOW - 60_000)
        device = verify(c, "lk-1", SECRET, NOW, NOW - 60_000, set())
        assert guard.check(c, NOW) == device, (i, c)


def test_replay_refused_and_forgotten_after_expiry() -> None:
    guard = CommandGuard("lk-1", SECRET, NOW - 1)
    c = cmd()
    assert guard.check(c, NOW) is None
    assert guard.check(c, NOW + 1) == "replayed"
    later = cmd(id="c-2", issued_at=NOW + 100_000, expires_at=NOW + 110_000)
    assert guard.check(later, NOW + 100_000) is None


def test_rule_2_commands_run_only_until_expires_at_like_on_a_device() -> None:
    # the bridge is the lockers' firmware: the same verdicts as a rule 2 device, at every
    # instant around expires_at, with and without the command's "rule"
    for c in (cmd(rule=2), cmd()):
        for now in (NOW, NOW + 10_000, NOW + 10_001, NOW + 40_000, NOW + 40_001):
            guard = CommandGuard("lk-1", SECRET, NOW - 60_000)
            device = verify(c, "lk-1", SECRET, now, NOW - 60_000, set())
            assert guard.check(c, now) == device, (c.get("rule"), now)
    assert CommandGuard("lk-1", SECRET, NOW - 1).check(cmd(rule=2), NOW + 10_001) == "expired"
    assert late_allowance_ms(cmd(rule=2)) == 0
    assert late_allowance_ms(cmd()) == late_allowance_ms(cmd(rule="2")) == 30_000
