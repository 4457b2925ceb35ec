"""Console sessions end on the server: a sign-out revokes the session wherever its cookie
is copied, and removing an operator or a key (or changing its password or scope) ends the
sessions it opened, once the gateway reads the new configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.console.password import hash_password
from gateway.console.session import csrf_for
from tests.support.console import PLATFORM_KEY, console_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PASSWORD = "a long operator password"
GUARD = {"name": "guard", "password_hash": hash_password(PASSWORD)}
OTHER_KEY = "another-platform-key-0123456789"


def settings(operators: list[dict[str, Any]], keys: list[Any] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "auth": {"platform_keys": keys or [PLATFORM_KEY, OTHER_KEY]},
            "console": {"operators": operators},
        }
    )


def signed_in(app: Any, **form: str) -> str:
    with TestClient(app) as c:
        r = c.post("/console/login", data=form, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/security"
        return str(r.cookies["courtyard_session"])


def page_works(app: Any, cookie: str) -> bool:
    """Whether the cookie signs a request in: a console endpoint answers 401 without a valid
    session, and 400 to a bad parameter with one."""
    with TestClient(app, cookies={"courtyard_session": cookie}) as c:
        r = c.get("/console/energy.csv", params={"since": "x", "until": "x"})
        assert r.status_code in (400, 401), r.text
        return r.status_code == 400


def logout(app: Any, cookie: str) -> None:
    with TestClient(app, cookies={"courtyard_session": cookie}) as c:
        r = c.post("/console/logout", data={"csrf": csrf_for(cookie)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_a_removed_operators_session_ends_with_the_restart(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    before = console_app(settings([GUARD]), store)
    cookie = signed_in(before, operator="guard", password=PASSWORD)
    assert page_works(before, cookie)
    after = console_app(settings([]), store)  # the same secrets, the operator removed
    assert not page_works(after, cookie)


def test_a_changed_password_or_scope_ends_the_operators_sessions(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    cookie = signed_in(console_app(settings([GUARD]), store), operator="guard", password=PASSWORD)
    changed = {**GUARD, "password_hash": hash_password("another long password")}
    assert not page_works(console_app(settings([changed]), store), cookie)
    narrowed = {**GUARD, "communities": ["c1"]}
    assert not page_works(console_app(settings([narrowed]), store), cookie)
    assert page_works(console_app(settings([GUARD]), store), cookie)  # unchanged: still valid


def test_a_keys_session_ends_when_its_scope_changes_or_the_key_goes(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    cookie = signed_in(console_app(settings([GUARD]), store), key=OTHER_KEY)
    scoped = [PLATFORM_KEY, {"key": OTHER_KEY, "communities": ["c1"]}]
    assert not page_works(console_app(settings([GUARD], scoped), store), cookie)
    third = "a-third-platform-key-0123456789"
    assert not page_works(console_app(settings([GUARD], [PLATFORM_KEY, third]), store), cookie)
    assert page_works(console_app(settings([GUARD]), store), cookie)


def test_sign_out_ends_the_session_everywhere_and_after_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    app = console_app(settings([GUARD]), store)
    cookie = signed_in(app, operator="guard", password=PASSWORD)
    kept = signed_in(app, operator="guard", password=PASSWORD)  # another browser
    assert page_works(app, cookie)
    logout(app, cookie)
    assert not page_works(app, cookie)  # a copy of the cookie is refused
    assert page_works(app, kept)  # the other session goes on
    restarted = console_app(settings([GUARD]), store)
    assert not page_works(restarted, cookie)
    assert page_works(restarted, kept)


def test_key_scopes_hold_in_the_console(tmp_path: Path) -> None:
    metrics_only = "metrics-only-platform-key-0123456"
    reader = "read-only-platform-key-0123456789"
    keys = [
        PLATFORM_KEY,
        {"key": metrics_only, "scopes": ["metrics"]},
        {"key": reader, "scopes": ["read"]},
    ]
    app = console_app(settings([GUARD], keys), tmp_path / "store.db")
    with TestClient(app) as c:
        r = c.post("/console/login", data={"key": metrics_only}, follow_redirects=False)
        assert r.headers["location"] == "/console/login?error=1"  # it may not read devices
    cookie = signed_in(app, key=reader)
    assert page_works(app, cookie)
    with TestClient(app, cookies={"courtyard_session": cookie}) as c:
        r = c.post("/console/alerts/1/ack", headers={"X-CSRF-Token": csrf_for(cookie)})
        assert r.status_code == 403 and "write" in r.text
    logout(app, cookie)  # signing out needs no scope
    assert not page_works(app, cookie)
