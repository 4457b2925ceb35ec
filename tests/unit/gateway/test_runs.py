"""The record of the gateway's runs: the start after one that never stopped knows it."""

from __future__ import annotations

from pathlib import Path

from gateway.store import runs
from gateway.store.schema import connect, migrate


def test_a_run_without_a_clean_stop_is_seen_by_the_next_start(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    conn = connect(path)
    migrate(conn)
    conn.close()
    first, previous = runs.begin(path, 1_000, "0.1.0")
    assert previous is None
    runs.end(path, first, 2_000)
    second, previous = runs.begin(path, 3_000, "0.1.0")
    assert previous == runs.Run(first, 1_000, 2_000, "0.1.0")  # stopped cleanly
    # killed: no end
    _, previous = runs.begin(path, 5_000, "0.2.0")
    assert previous == runs.Run(second, 3_000, None, "0.1.0")
