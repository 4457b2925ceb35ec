"""Pictures pushed with plate reads and access events, kept on disk beside the store.

The gateway names every file itself (``{community}.{32 random hex}.{jpg|png|bin}``): the
device's own name for a part is text from the network and never reaches a path. Files are
``0600`` in ``0700`` folders, one folder per community; an event refers to its picture by
URL (``/api/v1/pictures/{name}``), served only to callers who may see that community. Files
older than the store's retention are removed with the journal rows that refer to them.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from devices.adapters.base import Picture

URL_PREFIX = "/api/v1/pictures/"
NAME_RE = re.compile(r"([a-z0-9][a-z0-9_-]{0,63})\.([0-9a-f]{32})\.(jpg|png|bin)")
_EXTENSIONS = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "bin": "application/octet-stream"}


class Pictures:
    """The picture folder. Blocking file I/O: call from a worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved_total = 0
        self.expired_total = 0

    def save(self, community: str, picture: Picture) -> str:
        """Write one picture; its name (for :meth:`url`)."""
        ext = _EXTENSIONS.get(picture.content_type.split(";")[0].strip().lower(), "")
        if not ext:  # octet-stream parts: by their first bytes
            data = picture.data
            ext = (
                "jpg" if data[:3] == b"\xff\xd8\xff" else "png" if data[:4] == b"\x89PNG" else "bin"
            )
        name = f"{community}.{secrets.token_hex(16)}.{ext}"
        folder = self.root / community
        if not folder.is_dir():  # mode 0700 whatever the umask: pictures show people
            for path in (self.root, folder):
                path.mkdir(mode=0o700, exist_ok=True)
                path.chmod(0o700)
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(picture.data)
        self.saved_total += 1
        return name

    @staticmethod
    def url(name: str) -> str:
        return URL_PREFIX + name

    def find(self, name: str) -> tuple[str, Path] | None:
        """(community, path) of a picture by its name; None for a name the gateway would not
        have given, or a file that is gone."""
        match = NAME_RE.fullmatch(name)
        if match is None:
            return None
        path = self.root / match[1] / name
        return (match[1], path) if path.is_file() else None

    def remove(self, names: list[str]) -> None:
        """Pictures of a push that was not journaled (rejected): nothing will refer to them."""
        for name in names:
            found = self.find(name)
            if found is not None:
                found[1].unlink(missing_ok=True)

    def expire(self, before_s: float | None = None, *, days: float) -> int:
        """Remove pictures written more than ``days`` ago; how many."""
        cutoff = (time.time() if before_s is None else before_s) - days * 86400
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        self.expired_total += removed
        return removed
