"""Every answer under /console carries the console's Content-Security-Policy, X-Frame-Options
and X-Content-Type-Options; other paths are left alone."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Registry, load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client() -> TestClient:
    # no lifespan: the pages that need no gateway are enough to see the headers
    return TestClient(create_app(load_settings(None, {}), Registry()))


@pytest.mark.parametrize(
    "path", ["/console/login", "/console/static/console.css", "/console/static/security.js"]
)
def test_console_answers_carry_the_browser_protections(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(r.headers.get_list("content-security-policy")) == 1


def test_redirects_and_missing_files_carry_them_too(client: TestClient) -> None:
    for path, code in (("/console", 303), ("/console/static/nothing.js", 404)):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == code
        assert r.headers["x-frame-options"] == "DENY"


def test_other_paths_are_left_alone(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "x-frame-options" not in r.headers
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]  # the docs' own
    r = client.get("/consoles-are-not-the-console")
    assert "x-frame-options" not in r.headers
