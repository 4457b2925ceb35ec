"""The console's browser tests: Mosquitto, the gateway process, a small simulated community and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from firmware_stubs.community import Community
from gateway.console.password import hash_password
from tests.support.servers import GatewayProcess, Mosquitto

CHROMIUM = "/usr/bin/chromium"
OPERATOR_PASSWORD = "night shift at the gate"  # a test account
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Site:
    broker: Mosquitto
    gateway: GatewayProcess
    community: Community


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("console")
    broker = Mosquitto(root / "broker")
    broker.start()
    community = Community(
        "127.0.0.1",
        broker.port,
        gates=1,
        entrances=2,
        spaces=6,
        meters=6,
        lockers=1,
        rate_scale=60.0,
        secret_seed="console-e2e",
    )
    operator = (
        '\n[console]\noperators = [{ name = "guard", communities = ["c1"],'
        f' password_hash = "{hash_password(OPERATOR_PASSWORD)}" }}]\n'
    )
    gw = GatewayProcess(
        root / "gateway",
        mqtt_url=broker.url,
        registry=community.registry_toml(),
        extra=operator,
    )
    try:
        gw.start()
        assert community.start(wait_s=10.0), "the simulated devices did not connect"
        yield Site(broker, gw, community)
    finally:
        community.stop()
        gw.stop()
        broker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never skipped)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(
        base_url=site.gateway.api, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["notifications"], origin=site.gateway.api)
    # record browser notifications instead of showing them
    context.add_init_script(
        """
        window.__notes = [];
        window.Notification = class {
          constructor(title, opts) { window.__notes.push({title, body: (opts || {}).body}); }
          static get permission() { return "granted"; }
          static requestPermission() { return Promise.resolve("granted"); }
        };
        """
    )
    pg = context.new_page()
    yield pg
    context.close()


def login(page: Page, key: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Platform key").fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/console/security")


# The README's screenshots are taken here: `COURTYARD_SCREENSHOTS=docs/screenshots make test`
# refreshes them; by default they go to a scratch folder (a test run leaves the tree clean).
SCREENSHOTS = Path(
    os.environ.get("COURTYARD_SCREENSHOTS") or tempfile.mkdtemp(prefix="courtyard-shots-")
).resolve()
