"""A real, small filesystem for the disk-full tests: a tmpfs with a size limit, mounted by the
test (as root, here and in CI) and unmounted after. It fails loudly when it cannot be mounted:
a disk-full test on the big disk would prove nothing."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_filesystem(path: Path, size_bytes: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_bytes`` on ``path`` (made if missing) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cannot mount a {size_bytes}-byte tmpfs on {path} (the disk-full tests need root): "
            f"{done.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def fill(path: Path, chunk: int = 1 << 20) -> int:
    """Write zeros to ``path`` until the filesystem is full; the bytes written."""
    written = 0
    block = bytes(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                n = os.write(fd, block if chunk > 4096 else block[:4096])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if chunk > 4096:  # the last MiB does not fit: fill what is left page by page
                    chunk = 4096
                    continue
                return written
            written += n
    finally:
        os.close(fd)
