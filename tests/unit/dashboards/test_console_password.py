"""Operator passwords of the console: scrypt hashes, a format check for the config."""

from __future__ import annotations

import pytest

from gateway.config import ConsoleOperator
from gateway.console.password import check_format, hash_password, verify
from gateway.console.throttle import FailureCounter


def test_hash_and_verify() -> None:
    h = hash_password("correct horse battery staple")
    assert h.startswith("scrypt:16384:8:1:") and "correct" not in h
    assert verify("correct horse battery staple", h)
    assert not verify("correct horse battery stapl", h)
    assert not verify("", h)
    assert hash_password("same", b"\0" * 16) == hash_password("same", b"\0" * 16)
    assert hash_password("same") != hash_password("same")  # a fresh salt each time


def test_unknown_name_never_verifies() -> None:
    assert not verify("anything", None)


@pytest.mark.parametrize(
    "bad",
    [
        "plain-text-password",
        "scrypt:1024:8:1:00:00",  # too weak
        "scrypt:16385:8:1:00:00",  # N not a power of two
        "scrypt:16384:8:1:zz:00",
        "bcrypt:16384:8:1:00:00",
    ],
)
def test_config_refuses_what_it_cannot_check(bad: str) -> None:
    with pytest.raises(ValueError):
        check_format(bad)
    with pytest.raises(ValueError):
        ConsoleOperator(name="guard", password_hash=bad)


def test_config_keeps_the_hash_out_of_repr() -> None:
    h = hash_password("a long enough password")
    op = ConsoleOperator(name="guard", password_hash=h)
    assert h not in repr(op)


def test_failure_counter_counts_failures_in_a_window() -> None:
    now = [0.0]
    t = FailureCounter(3, window_s=60, monotonic=lambda: now[0])
    for _ in range(3):
        assert not t.blocked("guard@10.0.0.9")
        t.failed("guard@10.0.0.9")
    assert t.blocked("guard@10.0.0.9")
    assert not t.blocked("guard@10.0.0.7")  # another address is not locked out
    now[0] = 59.0
    assert t.blocked("guard@10.0.0.9")
    now[0] = 61.0
    assert not t.blocked("guard@10.0.0.9")
    t.failed("guard@10.0.0.9")
    t.forget("guard@10.0.0.9")
    t.failed("guard@10.0.0.9")
    t.failed("guard@10.0.0.9")
    assert not t.blocked("guard@10.0.0.9")  # forgotten: the count starts again
