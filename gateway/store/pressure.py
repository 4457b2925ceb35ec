"""The store under pressure: its disk quota, a floor of free disk, and failed writes.

One :class:`StorePressure` per gateway, on the event loop, is the one owner of the verdict
"the store is degraded, and why". It is told of every group commit (failed or not) by the
ingest, and ``check()`` runs every second:

- **Room** is what the store may still grow by: ``max_bytes`` less the database's pages in
  use, and the free disk (plus the database's free pages, which SQLite reuses) less
  ``min_free_bytes``, whichever is smaller. The WAL is not counted against ``max_bytes``
  (shedding itself writes to it, so counting it would make shedding look like growth): with a
  quota, the gateway starts the WAL over once it passes an eighth of ``max_bytes``, which
  bounds it; the free disk counts it as it is.
- **Shed**: with no room left, meter readings are shed in the order of
  :mod:`gateway.store.quota` (downsampled, then dropped; only what every reader already has)
  until a tenth of the limit is free again.
- **Hold**: when nothing can be shed, the ingest stops committing, so nothing is acknowledged
  and the broker queues, until there is room (a sink caught up, the operator freed space).
- **Failed writes** (``SQLITE_FULL``, an I/O error, a read-only filesystem) hold the ingest's
  batch unacknowledged; it retries every second and the first commit that succeeds recovers.

Every shed row and every hold is counted; while anything of this holds, ``/readyz`` answers
503 with the reasons and the ``store_degraded`` alert is active. A full disk leaves no room
to write that alert into the store, so a small reserve file sits beside the store and is
given up on the first ``SQLITE_FULL`` (then made again once there is room).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.clock import Clock
from gateway.store import quota
from gateway.store.journal import Store

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
RESERVE_BYTES = 1 << 20
"""Room for the alert, its outbox row and the rules' cursor once the disk is full: a few pages
of WAL each; a MiB is hundreds of such transactions."""

QUOTA, FLOOR = "quota", "disk_floor"
FULL, IO, READ_ONLY, WRITE = "disk_full", "io_error", "read_only", "write_error"
WRITE_FAILURES = (FULL, IO, READ_ONLY, WRITE)


def classify(exc: BaseException, path: str | None = None) -> str:
    """The reason a commit failed, from SQLite's error code or the OS errno; with the store's
    ``path``, a file that cannot be opened on a read-only filesystem counts as ``read_only``."""
    if path is not None and isinstance(exc, sqlite3.Error | OSError):
        try:
            if os.statvfs(Path(path).parent).f_flag & os.ST_RDONLY:
                return READ_ONLY
        except OSError:
            pass
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        if name == "SQLITE_FULL" or "disk is full" in text:
            return FULL
        if name.startswith("SQLITE_READONLY") or "readonly" in text:
            return READ_ONLY
        if name.startswith("SQLITE_IOERR") or "i/o error" in text:
            return IO
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return FULL
        if exc.errno == errno.EROFS:
            return READ_ONLY
        return IO
    return WRITE


@dataclass(frozen=True, slots=True)
class Usage:
    used_bytes: int  # the database's pages in use (the WAL is bounded apart: see the module)
    free_list_bytes: int  # the database's free pages (reused before the file grows)
    free_disk_bytes: int  # what the filesystem grants an unprivileged writer


class StorePressure:
    """Quota, floor, shedding, holds and write failures of one store (see the module)."""

    def __init__(
        self,
        store: Store,
        *,
        max_bytes: int,
        min_free_bytes: int,
        downsample_every_ms: int,
        keep_cursors: Iterable[str],
        clock: Clock,
        reserve_bytes: int = RESERVE_BYTES,
        chunk: int = quota.CHUNK,
        chunks_per_check: int = 3,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.downsample_every_ms = downsample_every_ms
        self.keep_cursors = tuple(keep_cursors)
        self.clock = clock
        self.reserve_bytes = reserve_bytes
        self.reserve_path = Path(store.path + "-reserve")
        self._folder = self.reserve_path.resolve().parent
        self.chunk = chunk
        self.chunks_per_check = chunks_per_check
        self.shedding = False  # until a tenth of the limit is free again
        self.reasons: dict[str, str] = {}  # reason -> what an operator should read
        self.since_ms: dict[str, int] = {}
        self.held = False
        self.shed_total: Counter[str] = Counter()  # "downsampled" / "dropped" -> rows
        self.holds_total = 0
        self.write_failures_total: Counter[str] = Counter()
        self.last_shed_ms: int | None = None
        self._shed_before: dict[str, int] = {}  # the counts when the episode began
        self.usage: Usage | None = None
        self.alert: Callable[[Mapping[str, str]], None] | None = None
        """Told the reasons (empty: recovered) whenever they change; raises the alert. It
        writes to the store, so it may fail: it is then told again at the next check."""
        self._alerted: dict[str, str] | None = {}  # None: unknown (telling it failed)
        self._alert_failing = False
        self._disk_room = True  # after SQLITE_FULL: whether the disk has room to try again

    # -- what the ingest asks and tells -----------------------------------------------------

    def may_commit(self) -> bool:
        """False while held (nothing is committed, so nothing is acknowledged), and after a
        full disk until the disk has room again: a retry would only eat the reserve given up
        for the alert."""
        return not self.held and self._disk_room

    def commit_failed(self, exc: BaseException) -> None:
        reason = classify(exc, self.store.path)
        self.write_failures_total[reason] += 1
        if reason == FULL:
            self._disk_room = False
        if reason in self.reasons:
            return
        if reason == FULL:
            self._release_reserve()
        self._set(reason, f"journal commits fail: {exc}")

    def commit_ok(self) -> None:
        if any(r in self.reasons for r in WRITE_FAILURES):
            for r in WRITE_FAILURES:
                self._clear(r)

    @property
    def write_failing(self) -> bool:
        return any(r in self.reasons for r in WRITE_FAILURES)

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)

    # -- the periodic check -------------------------------------------------------------------

    def start(self) -> None:
        """Make the reserve file (when the disk has room for it)."""
        self._make_reserve()

    def measure(self) -> Usage:
        conn = self.store.conn
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (free_pages,) = conn.execute("PRAGMA freelist_count").fetchone()
        st = os.statvfs(self._folder)
        return Usage(
            used_bytes=(pages - free_pages) * page_size,
            free_list_bytes=free_pages * page_size,
            free_disk_bytes=st.f_bavail * st.f_frsize,
        )

    def room(self, usage: Usage) -> tuple[int, str, int]:
        """(bytes the store may still grow by, the limit that binds, the slack to shed to)."""
        best: tuple[int, str, int] | None = None
        if self.max_bytes:
            best = (self.max_bytes - usage.used_bytes, QUOTA, self.max_bytes // 10)
        if self.min_free_bytes:
            floor_room = usage.free_disk_bytes + usage.free_list_bytes - self.min_free_bytes
            if best is None or floor_room < best[0]:
                best = (floor_room, FLOOR, max(self.min_free_bytes // 10, self.reserve_bytes))
        return best if best is not None else (1 << 62, "", 0)

    async def check(self) -> None:
        """Measure; shed or hold when there is no room; release a hold when there is."""
        try:
            await self._check()
        except (sqlite3.Error, OSError) as exc:  # shedding cannot write either: as a commit
            self.commit_failed(exc)

    async def _check(self) -> None:
        if self.write_failing:
            if not self._disk_room:
                st = os.statvfs(self._folder)
                self._disk_room = st.f_bavail * st.f_frsize >= 2 * self.reserve_bytes + (1 << 18)
            self._sync_alert()
            return  # the ingest's retries decide that; shedding would fail the same way
        usage = self.usage = self.measure()
        room, limit, slack = self.room(usage)
        exhausted = False
        if room <= 0 or self.shedding:
            room, exhausted = await self._shed(room, limit, slack)
            self.shedding = room < slack and not exhausted
        if self.held:
            if room >= slack // 2:  # not at the first free byte: that would stop and go
                self.held = False
                log.warning(
                    "store: room again (%d bytes within its %s): committing", room, _what(limit)
                )
        elif room <= 0 and exhausted:
            self.held = True
            self.holds_total += 1
            log.error(
                "store: at its %s and nothing left to shed: holding acknowledgements (the "
                "broker queues) until there is room",
                _what(limit),
            )
            self._set(limit, f"at its {_what(limit)}, nothing left to shed: holding")
        if room > 0 and not self.held and not self.shedding:
            self._clear(QUOTA)
            self._clear(FLOOR)
        if not self.write_failing and not self.reserve_path.exists():
            self._make_reserve()
        self._sync_alert()

    async def _shed(self, room: int, limit: str, slack: int) -> tuple[int, bool]:
        """Shed until ``slack`` bytes are free again, at most ``chunks_per_check`` transactions,
        and none more once one left less room than before: shedding writes to the WAL too
        (see :data:`quota.CHUNK`), which the checkpoint between two checks gives back.
        (The room after, whether nothing is left to shed.)"""
        conn = self.store.conn
        limit_id = quota.shed_limit(conn, self.keep_cursors)
        after_id = 0  # downsampling goes on from the last row it read
        budget = self.chunks_per_check
        exhausted = True
        for step in ("downsampled", "dropped"):
            while room < slack:
                if not budget:
                    exhausted = False
                    break
                if step == "downsampled":
                    after_id, removed = quota.downsample_chunk(
                        conn,
                        self.store.transaction,
                        limit_id=limit_id,
                        every_ms=self.downsample_every_ms,
                        after_id=after_id,
                        chunk=self.chunk,
                    )
                    more = after_id > 0
                else:
                    removed = quota.drop_chunk(
                        conn, self.store.transaction, limit_id=limit_id, chunk=self.chunk
                    )
                    more = removed > 0
                if not more:
                    break  # (a look that found nothing spends none of the budget)
                budget -= 1
                self.shed_total[step] += removed
                if removed:
                    self._set(limit, f"at its {_what(limit)}: shedding meter readings")
                    self.last_shed_ms = self.clock.now_ms()
                await asyncio.sleep(0)
                self.usage = self.measure()
                room, last = self.room(self.usage)[0], room
                if room < last:  # the WAL grew more than the rows freed: let it be checkpointed
                    budget = 0
            if room >= slack or not exhausted:
                exhausted = False
                break
        return room, exhausted

    # -- state, alert and reserve -------------------------------------------------------------

    def _set(self, reason: str, detail: str) -> None:
        if self.reasons.get(reason) == detail:
            return
        if reason not in self.reasons:
            self.since_ms[reason] = self.clock.now_ms()
            if reason in WRITE_FAILURES:
                log.error("store degraded (%s): %s", reason, detail)
            elif "shedding" in detail:  # once per episode: its end says what it shed
                self._shed_before = dict(self.shed_total)
                log.warning("store: %s that every sink already has", detail)
        self.reasons[reason] = detail
        self._sync_alert()

    def _clear(self, reason: str) -> None:
        if self.reasons.pop(reason, None) is None:
            return
        since = self.since_ms.pop(reason, self.clock.now_ms())
        shed = ""
        if reason in (QUOTA, FLOOR):
            n = {k: v - self._shed_before.get(k, 0) for k, v in self.shed_total.items()}
            shed = f" (downsampled {n.get('downsampled', 0)}, dropped {n.get('dropped', 0)})"
        log.warning(
            "store recovered from %s after %.1f s%s",
            reason,
            (self.clock.now_ms() - since) / 1000,
            shed,
        )
        self._sync_alert()

    def _sync_alert(self) -> None:
        """Tell the alert what holds now, if it changed (again, if telling it failed)."""
        if self.alert is None or self.reasons == self._alerted:
            return
        try:
            self.alert(dict(self.reasons))
        except (sqlite3.Error, OSError) as exc:  # no room for it yet: again at the next check
            if not self._alert_failing:
                log.error("store_degraded alert could not be written yet: %s", exc)
            self._alert_failing = True
            self._alerted = None  # what the alert says now is unknown: tell it again
            return
        self._alert_failing = False
        self._alerted = dict(self.reasons)

    def _make_reserve(self) -> None:
        if not self.reserve_bytes or self.reserve_path.exists():
            return
        try:
            st = os.statvfs(self.reserve_path.parent)
            if st.f_bavail * st.f_frsize < 4 * self.reserve_bytes:
                return
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, bytes(self.reserve_bytes))  # real blocks, not a sparse file
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.reserve_path.unlink(missing_ok=True)

    def _release_reserve(self) -> None:
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("store: could not give up the reserve file %s: %s", self.reserve_path, exc)
            return
        log.warning("store: disk full, gave up the %d-byte reserve for alerts", self.reserve_bytes)

    def stats(self) -> dict[str, object]:
        u = self.usage
        return {
            "status": "degraded" if self.reasons else "ok",
            "reasons": dict(self.reasons),
            "held": self.held,
            "used_bytes": None if u is None else u.used_bytes,
            "free_disk_bytes": None if u is None else u.free_disk_bytes,
            "max_bytes": self.max_bytes or None,
            "min_free_bytes": self.min_free_bytes or None,
            "shed_rows_total": dict(self.shed_total),
            "holds_total": self.holds_total,
            "last_shed_ms": self.last_shed_ms,
        }


def _what(limit: str) -> str:
    return "quota ([store] max_bytes)" if limit == QUOTA else "floor of free disk"
