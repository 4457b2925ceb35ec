"""The console's routes on a small stand-in for the gateway (its settings and authenticator),
for tests of sign-in, sessions and headers that need no broker or store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from gateway.api import console
from gateway.auth import Authenticator
from gateway.config import Settings
from gateway.revocation import Revocations

PLATFORM_KEY = "console-test-platform-key-0123"


@dataclass
class ConsoleGateway:
    """What the console's sign-in and session code read of the gateway."""

    settings: Settings
    authenticator: Authenticator
    revocations: Revocations
    alerting: None = None  # resolved before the session is checked; never reached here


def console_app(settings: Settings, store: Path) -> FastAPI:
    """The console router and its static files over a :class:`ConsoleGateway` whose
    revocations are kept in the SQLite file ``store`` (opened here; several apps may share
    one file, like a gateway before and after a restart)."""
    app = FastAPI()
    revocations = Revocations(str(store))
    revocations.open()
    gw = ConsoleGateway(settings, Authenticator(settings.auth), revocations)
    app.state.gateway = gw
    app.include_router(console.router)
    app.mount("/console/static", console.static, name="console-static")
    return app
