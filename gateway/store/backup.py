"""Copies of the store that are whole or absent, and the lock that says a gateway runs on it.

A copy is taken with SQLite's backup API in a single step: one read transaction, so the copy
is the store as of the moment it began (every commit before it, none after), and in WAL mode
the gateway's writers go on meanwhile. A step-wise copy would start over whenever another
connection commits, which under ingest is every few milliseconds: it would never finish. The
copy is written beside its target, checked with ``integrity_check``, synced, then renamed
over the target: a crash or a failed check leaves no half-written file under the name.

Restoring replaces the store file, so no gateway may have it open: a running gateway holds
an exclusive ``flock`` on ``STORE.lock`` (the kernel drops it when the process dies, so a
crash leaves no stale lock), and :func:`restore` takes the same lock first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """A copy could not be made, or a file is not a sound Courtyard store."""


class StoreBusy(BackupError):
    """A gateway runs on the store (it holds the lock)."""


@dataclass(frozen=True, slots=True)
class Copy:
    path: Path
    bytes: int
    schema_version: int
    journal_head: int  # the newest journal row in the copy (0 when empty)
    seconds: float


def copy_store(source: sqlite3.Connection, out: Path) -> Copy:
    """Copy the database of ``source`` to ``out`` (see the module's docstring). Raises
    :class:`BackupError` when the copy fails its ``integrity_check``; ``out`` is then left
    as it was."""
    started = time.monotonic()
    out = Path(out)
    if not out.parent.is_dir():
        raise BackupError(f"no folder {out.parent} for {out.name}")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.backup(dst)  # pages=-1: all of it in one step, one read transaction
            # a single self-contained file: no -wal to carry beside it
            dst.execute("PRAGMA journal_mode = DELETE")
            _check(dst, str(out))
            version, head = _describe(dst)
        finally:
            dst.close()
        _fsync(tmp)
        tmp.replace(out)
        _fsync(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return Copy(out, out.stat().st_size, version, head, time.monotonic() - started)


def backup(store: Path, out: Path) -> Copy:
    """A copy of the store at ``store`` in ``out``, whether a gateway runs on it or not."""
    if not Path(store).is_file():
        raise BackupError(f"no store at {store}")
    try:
        # mode=rw: never create an empty database where the store should have been
        uri = f"{Path(store).resolve().as_uri()}?mode=rw"
        source = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the store {store}: {exc}") from None
    try:
        source.execute("PRAGMA busy_timeout = 10000")
        return copy_store(source, Path(out))
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {store} failed: {exc}") from None
    finally:
        source.close()


def check_file(path: Path) -> tuple[int, int]:
    """Open ``path`` read-only and check it: a SQLite file, ``integrity_check`` ok, a
    Courtyard store (it has a journal). Returns (schema version, journal head)."""
    if not Path(path).is_file():
        raise BackupError(f"no file at {path}")
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    try:
        _check(conn, str(path))
        return _describe(conn)
    except sqlite3.Error as exc:  # "file is not a database" and the like
        raise BackupError(f"{path} is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def restore(copy: Path, store: Path, *, newest_version: int) -> Path | None:
    """Put ``copy`` in place of the store at ``store``, refused while a gateway runs on it
    (:class:`StoreBusy`), for a file that fails :func:`check_file`, or for one of a schema
    newer than ``newest_version``. The store it replaces (with its -wal, which may hold
    commits not yet copied back) is moved aside, not deleted: that path is returned."""
    store = Path(store)
    lock = StoreLock(store)
    lock.acquire()
    try:
        version, _ = check_file(copy)
        if version > newest_version:
            raise BackupError(
                f"{copy} has schema version {version}, written by a newer Courtyard (this one"
                f" knows up to {newest_version})"
            )
        tmp = store.with_name(f".{store.name}.{os.getpid()}.restoring")
        try:
            shutil.copyfile(copy, tmp)
            _fsync(tmp)
            aside = None
            if store.exists():
                stamp = time.strftime("%Y%m%dT%H%M%S")
                aside = store.with_name(f"{store.name}.pre-restore-{stamp}")
                for suffix in ("", "-wal", "-shm"):
                    old = Path(f"{store}{suffix}")
                    if old.exists():
                        old.replace(f"{aside}{suffix}")
            tmp.replace(store)
            _fsync(store.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return aside
    finally:
        lock.release()


class StoreLock:
    """An exclusive ``flock`` on ``STORE.lock`` for as long as a gateway runs on the store."""

    def __init__(self, store: Path | str) -> None:
        self.path = Path(f"{store}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreBusy` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            # a read-only or full filesystem: an existing lock file still locks (flock needs no
            # write access); without one the caller waits for the filesystem, as for the store
            fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreBusy(
                f"a gateway is running on {self.path.with_suffix('')} (process {holder} holds"
                f" {self.path}): stop it first"
            ) from None
        with contextlib.suppress(OSError):  # who holds it, for the message above; best effort
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        # the file stays: removing it would let a second process lock a fresh file while
        # a third still holds the old one
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def _check(conn: sqlite3.Connection, name: str) -> None:
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:  # "malformed", "not a database": as bad a verdict
        raise BackupError(f"{name} fails integrity_check: {exc}") from None
    if rows != ["ok"]:
        raise BackupError(f"{name} fails integrity_check: {'; '.join(rows[:5])}")
    (journal,) = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'"
    ).fetchone()
    if not journal:
        raise BackupError(f"{name} is not a Courtyard store (it has no journal)")


def _describe(conn: sqlite3.Connection) -> tuple[int, int]:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (head,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()
    return int(version), int(head)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
