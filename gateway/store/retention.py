"""Retention: journal rows and dead letters older than ``[store] retention_days`` expire, a
few thousand rows per transaction with the event loop running in between (a journal of 90
days holds hundreds of millions of rows), and never a row that a sink has not sent yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.store.journal import Store

log = logging.getLogger(__name__)

EVERY_S = 3600.0


class Retention:
    def __init__(
        self, store: Store, days: float, *, keep_cursor: str | None, now_ms: Callable[[], int]
    ) -> None:
        self.store = store
        self.days = days
        self.keep_cursor = keep_cursor
        """A sink's cursor: rows after it are kept whatever their age."""
        self.now_ms = now_ms

    async def run(self) -> tuple[int, int]:
        """Expire what is due; (journal rows, dead letters) removed."""
        cutoff = self.now_ms() - int(self.days * 86400_000)
        keep_from = None if self.keep_cursor is None else self.store.load_cursor(self.keep_cursor)
        journal = dead = 0
        for rows, letters in self.store.expire_steps(cutoff, keep_after_id=keep_from):
            journal, dead = journal + rows, dead + letters
            await asyncio.sleep(0)
        if journal or dead:
            log.info(
                "retention: removed %d journal rows and %d dead letters older than %g days",
                journal,
                dead,
                self.days,
            )
        return journal, dead
