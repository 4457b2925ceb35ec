"""The gateway's runs (schema version 2, table ``runs``): when each started and whether it
stopped cleanly. A run left without ``stopped_ms`` ended in a crash, a ``kill -9`` or a
power cut; the next start says so in the log, so an operator can tell a planned stop from an
outage after the fact."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.schema import connect


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    started_ms: int
    stopped_ms: int | None
    version: str


def begin(path: str, now_ms: int, version: str) -> tuple[int, Run | None]:
    """Record a run starting now; returns its id and the run before it (None on a first
    start)."""
    conn = connect(path)
    try:
        row = conn.execute(
            "SELECT id, started_ms, stopped_ms, version FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        cur = conn.execute(
            "INSERT INTO runs (started_ms, version) VALUES (?, ?)", (now_ms, version)
        )
        return int(cur.lastrowid or 0), Run(*row) if row else None
    finally:
        conn.close()


def end(path: str, run_id: int, now_ms: int) -> None:
    """Record that run ``run_id`` stopped cleanly."""
    conn = connect(path)
    try:
        conn.execute("UPDATE runs SET stopped_ms = ? WHERE id = ?", (now_ms, run_id))
    finally:
        conn.close()
