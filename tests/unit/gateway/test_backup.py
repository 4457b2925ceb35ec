"""``courtyard backup`` and ``courtyard restore`` on a store file: a checked copy, atomic
renames, a restore refused while a gateway holds the store, for a damaged file, or for one
from a newer version (nothing changed then)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.store.backup import BackupError, StoreLock, backup, check_file, restore
from gateway.store.schema import SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "store_v1.db"


def journal(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM journal ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copyfile(FIXTURE, tmp_path / "courtyard.db")
    file = tmp_path / "courtyard.toml"
    file.write_text('[store]\npath = "courtyard.db"\n', encoding="utf-8")
    return file


def test_backup_is_a_checked_single_file_copy(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "backups" / "cy.db"
    out.parent.mkdir()
    copy = backup(tmp_path / "courtyard.db", out)
    assert copy.path == out
    assert copy.journal_head == check_file(out)[1] > 0
    assert journal(out) == journal(tmp_path / "courtyard.db")
    assert sorted(p.name for p in out.parent.iterdir()) == ["cy.db"]  # no -wal, no partial


def test_backup_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no store"):
        backup(tmp_path / "absent.db", tmp_path / "out.db")
    assert not (tmp_path / "absent.db").exists()
    assert not (tmp_path / "out.db").exists()


def test_cli_backup_then_restore_round_trip(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cy-backup.db"
    assert main(["backup", "--config", str(config), "--out", str(out)]) == 0
    assert "integrity_check ok" in capsys.readouterr().out
    store = tmp_path / "courtyard.db"
    kept = journal(store)
    conn = sqlite3.connect(store)
    conn.execute("DELETE FROM journal WHERE id > 10")  # what a bad day does to it
    conn.commit()
    conn.close()
    assert main(["restore", "--config", str(config), str(out)]) == 0
    said = capsys.readouterr().out
    assert "the store it replaced is in" in said
    assert journal(store) == kept
    aside = [
        p
        for p in tmp_path.glob("courtyard.db.pre-restore-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(aside) == 1 and len(journal(aside[0])) == 10


def test_restore_is_refused_while_a_gateway_holds_the_store(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cy-backup.db"
    backup(tmp_path / "courtyard.db", out)
    held = StoreLock(tmp_path / "courtyard.db")
    held.acquire()
    try:
        assert main(["restore", "--config", str(config), str(out)]) == 1
        assert "a gateway is running" in capsys.readouterr().err
        assert main(["serve", "--config", str(config)]) == 1  # nor a second gateway
        assert "a gateway is running" in capsys.readouterr().err
    finally:
        held.release()
    assert not list(tmp_path.glob("courtyard.db.pre-restore-*"))


def test_restore_refuses_a_damaged_file(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged.db"
    data = bytearray(FIXTURE.read_bytes())
    page = 4096
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # two pages of the b-trees overwritten
    damaged.write_bytes(bytes(data))
    before = journal(tmp_path / "courtyard.db")
    assert main(["restore", "--config", str(config), str(damaged)]) == 1
    err = capsys.readouterr().err
    assert "refused, nothing changed" in err
    assert "fails integrity_check: database disk image is malformed" in err
    assert journal(tmp_path / "courtyard.db") == before
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(FIXTURE.read_bytes()[:100])
    assert main(["restore", "--config", str(config), str(truncated)]) == 1
    assert "truncated.db fails integrity_check" in capsys.readouterr().err


def test_restore_refuses_a_newer_schema(tmp_path: Path, config: Path) -> None:
    newer = tmp_path / "newer.db"
    shutil.copyfile(FIXTURE, newer)
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(BackupError, match="newer Courtyard"):
        restore(newer, tmp_path / "courtyard.db", newest_version=SCHEMA_VERSION)


def test_serve_refuses_a_newer_store_with_a_clear_message(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(tmp_path / "courtyard.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    assert main(["serve", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"schema version {SCHEMA_VERSION + 1}, written by a newer Courtyard" in err


def test_backup_into_a_missing_folder_says_so(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "cy.db"
    assert main(["backup", "--config", str(config), "--out", str(out)]) == 1
    assert f"no folder {out.parent}" in capsys.readouterr().err
