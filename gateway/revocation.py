"""Revoked credentials: console sessions ended by a sign-out, and residents whose tokens were
revoked (by ``sub`` in a community, for every token issued before a time).

The tables live in the gateway's SQLite file, on this module's own connection (like the audit
log), so a revocation survives a restart; they are created at :meth:`Revocations.open`. Every
check reads a dictionary in memory (an unlock pays one lookup), every revocation is written
before it is acknowledged. Revocations are rare: each is one small transaction.

Ended sessions are kept until the session would have expired anyway, then forgotten.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from gateway.store.schema import connect, migrate


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Revocations:
    """What has been revoked; ``open()`` loads it, the ``revoke_*`` methods persist it."""

    def __init__(self, path: str, now_ms: Callable[[], int] = _wall_ms) -> None:
        self.path = path
        self.now_ms = now_ms
        self._conn: sqlite3.Connection | None = None
        self._sessions: dict[str, int] = {}
        self._residents: dict[tuple[str, str], int] = {}

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("revocations are not open")
        return self._conn

    def open(self) -> None:
        self._conn = connect(self.path)
        migrate(self._conn)
        self._conn.execute("DELETE FROM revoked_sessions WHERE until_ms < ?", (self.now_ms(),))
        self._sessions = dict(self._conn.execute("SELECT sid, until_ms FROM revoked_sessions"))
        self._residents = {
            (c, s): int(b)
            for c, s, b in self._conn.execute(
                "SELECT community, sub, before_ms FROM revoked_residents"
            )
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- console sessions ---------------------------------------------------------------------

    def revoke_session(self, sid: str, until_ms: int) -> None:
        """End session ``sid`` (kept until ``until_ms``, its own expiry)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO revoked_sessions (sid, until_ms) VALUES (?, ?)",
            (sid, until_ms),
        )
        self._sessions[sid] = until_ms

    def session_revoked(self, sid: str) -> bool:
        return sid in self._sessions

    # -- residents ----------------------------------------------------------------------------

    def revoke_resident(self, community: str, sub: str, before_ms: int, by: str = "") -> int:
        """Refuse every token of ``sub`` in ``community`` issued before ``before_ms``; a later
        revocation of the same resident moves the time (never back: the earlier one stands
        if it reaches further). Returns the time in force."""
        before = max(before_ms, self._residents.get((community, sub), 0))
        self.conn.execute(
            "INSERT OR REPLACE INTO revoked_residents (community, sub, before_ms, at_ms, by)"
            " VALUES (?, ?, ?, ?, ?)",
            (community, sub, before, self.now_ms(), by),
        )
        self._residents[(community, sub)] = before
        return before

    def resident_revoked_before(self, community: str, sub: str) -> int | None:
        """Tokens of this resident issued before this time (epoch ms) are revoked; None:
        none is."""
        return self._residents.get((community, sub))
