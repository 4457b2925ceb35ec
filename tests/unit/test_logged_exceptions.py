"""The suite's own guard: an exception logged by a background task fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import asyncio, logging

import pytest

log = logging.getLogger("gateway.some_task")


async def crash():
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("periodic job failed")  # what a task boundary does


async def test_background_crash():
    task = asyncio.create_task(crash())
    await task


@pytest.mark.allow_logged_exceptions
async def test_background_crash_allowed():
    await asyncio.create_task(crash())


async def test_other_loggers_and_plain_errors_pass():
    logging.getLogger("somelib").exception("not ours", exc_info=ValueError("x"))
    log.error("an error without an exception is a report, not a crash")
"""


def test_a_logged_exception_fails_the_test_unless_it_opts_out(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(
        "from tests.conftest import fail_on_logged_exceptions  # noqa: F401\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'allow_logged_exceptions: opt out')\n"
    )
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "--rootdir", str(pytester.path)
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*1 exception(s) logged by Courtyard's code:",
            "*gateway.some_task: periodic job failed (ValueError('boom'))",
        ]
    )
