"""``courtyard backup`` and ``courtyard restore`` (docs/upgrading.md).

Exit status: 0 done; 1 refused or failed (the reason on stderr, nothing changed); 2 an
invalid configuration (as every command).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from gateway.config import load_settings
from gateway.store.backup import BackupError, StoreLock, backup, restore
from gateway.store.schema import SCHEMA_VERSION, NewerStore


def cmd_backup(args: argparse.Namespace) -> int:
    store = Path(load_settings(args.config).store.path)
    try:
        copy = backup(store, Path(args.out))
    except BackupError as exc:
        print(f"courtyard backup: {exc}", file=sys.stderr)
        return 1
    print(
        f"backup of {store} in {copy.path}: {copy.bytes} bytes, schema version "
        f"{copy.schema_version}, integrity_check ok, journal up to row {copy.journal_head}, "
        f"{copy.seconds:.2f} s"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    store = Path(load_settings(args.config).store.path)
    try:
        aside = restore(Path(args.file), store, newest_version=SCHEMA_VERSION)
    except BackupError as exc:
        print(f"courtyard restore: refused, nothing changed: {exc}", file=sys.stderr)
        return 1
    kept = f"; the store it replaced is in {aside}" if aside else ""
    print(
        f"restored {args.file} to {store}{kept}. Start the gateway: it upgrades an older "
        "schema (with a snapshot first) and replays what the copy had not processed."
    )
    return 0


def preflight(store: Path) -> str | None:
    """Why ``serve`` cannot start on ``store`` (said before the server starts, not as a
    traceback from inside it): a gateway already runs on it, or a newer Courtyard wrote it."""
    lock = StoreLock(store)
    try:
        lock.acquire()
    except BackupError as exc:
        return str(exc)
    except OSError:
        return None  # a filesystem not writable yet: the gateway waits for it at start-up
    lock.release()
    if not store.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # the store's own open says what is wrong with it
    if int(version) > SCHEMA_VERSION:
        return str(NewerStore(str(store), int(version)))
    return None


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "backup", help="copy the store to a file, while the gateway runs or not (checked)"
    )
    b.add_argument("--config", "-c", help="the TOML config file (its [store] path)")
    b.add_argument("--out", required=True, help="the backup file (replaced atomically)")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore", help="put a backup in place of the store (the gateway must be stopped)"
    )
    r.add_argument("--config", "-c", help="the TOML config file (its [store] path)")
    r.add_argument("file", help="the backup file (refused if it fails integrity_check)")
    r.set_defaults(func=cmd_restore)
