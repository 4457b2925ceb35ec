"""The picture folder: names given by the gateway, private files, lookups that cannot leave
the folder, expiry with the store's retention."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from devices.adapters.base import Picture
from gateway.adapters.pictures import Pictures
from gateway.adapters.push import _same

JPEG = b"\xff\xd8\xff\xe0plate\xff\xd9"


def test_a_picture_is_named_by_the_gateway_and_kept_private(tmp_path: Path) -> None:
    pictures = Pictures(tmp_path / "pictures")
    name = pictures.save("c1", Picture("image/jpeg", JPEG, name="../../etc/passwd"))
    assert name.startswith("c1.") and name.endswith(".jpg") and "passwd" not in name
    community, path = pictures.find(name) or ("", Path())
    assert community == "c1" and path.read_bytes() == JPEG
    assert path.parent == tmp_path / "pictures" / "c1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "pictures").stat().st_mode) == 0o700
    octet = pictures.save("c1", Picture("application/octet-stream", b"\x89PNG\r\n"))
    assert octet.endswith(".png")
    assert pictures.url(name) == f"/api/v1/pictures/{name}"


@pytest.mark.parametrize(
    "name",
    ["../c1.0123456789abcdef0123456789abcdef.jpg", "c1.0123.jpg", "c1/../x", "", "C1.x.jpg"],
)
def test_names_the_gateway_would_not_give_find_nothing(tmp_path: Path, name: str) -> None:
    assert Pictures(tmp_path).find(name) is None


def test_old_pictures_expire(tmp_path: Path) -> None:
    pictures = Pictures(tmp_path / "pictures")
    old = pictures.save("c1", Picture("image/jpeg", JPEG))
    new = pictures.save("c2", Picture("image/jpeg", JPEG))
    found = pictures.find(old)
    assert found is not None
    ten_days_ago = time.time() - 10 * 86400
    os.utime(found[1], (ten_days_ago, ten_days_ago))
    assert pictures.expire(days=7) == 1
    assert pictures.find(old) is None and pictures.find(new) is not None
    pictures.remove([new])
    assert pictures.find(new) is None


def test_a_mac_address_matches_whatever_its_spelling() -> None:
    assert _same("bc:5e:33:62:2a:5c", "BC-5E-33-62-2A-5C")
    assert _same("E2A5D4F1-77c0ab12", "e2a5d4f1-77c0ab12")
    assert not _same("bc:5e:33:62:2a:5c", "bc:5e:33:62:2a:5d")
