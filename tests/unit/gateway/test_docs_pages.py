"""The site root and the API documentation pages: everything they load comes from the gateway
itself (a LAN without internet access still shows them)."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Registry, load_settings


@pytest.fixture(scope="module")
def client() -> TestClient:
    # no lifespan: these pages need no running gateway
    return TestClient(create_app(load_settings(None, {}), Registry()))


def test_the_site_root_sends_a_browser_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_a_docs_page_loads_only_files_the_gateway_serves(
    client: TestClient, page: str, assets: set[str]
) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert "text/html" in html.headers["content-type"]
    # no address of another host anywhere in the page (a CDN, web fonts)
    assert not re.search(r"(https?:)?//[a-z]", html.text, re.IGNORECASE), html.text
    loaded = set(re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text))
    assert {url.rpartition("/")[2] for url in loaded} == assets
    for url in loaded:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url  # the real file, not an error page
    assert "'/openapi.json'" in html.text or '"/openapi.json"' in html.text
    # the browser itself keeps the page to the gateway's origin, inline scripts by their hash
    policy = html.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.partition("script-src")[2].partition(";")[0]
    assert "img-src 'self' data:;" in policy


def test_the_openapi_document_lists_no_docs_or_console_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths  # the API itself is there
    assert not [p for p in paths if p == "/" or p.startswith(("/docs", "/redoc", "/console"))]


def test_swagger_ui_oauth2_redirect_page_is_served(client: TestClient) -> None:
    answer = client.get("/docs/oauth2-redirect")
    assert answer.status_code == 200
    assert "oauth2" in answer.text
