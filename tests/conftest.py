"""Fixtures shared by every test folder: the real-server fixtures are registered here, and
every test fails when Courtyard's own code logged an exception it did not expect."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.support.influx", "pytester"]

OWN_PACKAGES = frozenset({"gateway", "devices", "firmware_stubs"})


class _ExceptionTrap(logging.Handler):
    """Keeps every ERROR record with an exception that a Courtyard logger emitted: a
    background task's crash is logged at its task boundary, and would pass unseen."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.partition(".")[0] in OWN_PACKAGES:
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_exceptions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Opt out with ``@pytest.mark.allow_logged_exceptions`` where a test provokes one."""
    trap = _ExceptionTrap()
    root = logging.getLogger()
    root.addHandler(trap)
    try:
        yield
    finally:
        root.removeHandler(trap)
    if trap.records and request.node.get_closest_marker("allow_logged_exceptions") is None:
        shown = "\n".join(
            f"{r.name}: {r.getMessage()} ({(r.exc_info or ())[1]!r})" for r in trap.records[:5]
        )
        pytest.fail(f"{len(trap.records)} exception(s) logged by Courtyard's code:\n{shown}")
