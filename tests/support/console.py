"""The console's routes on a small stand-in for the gateway (its settings and authenticator),
for tests of sign-in, sessions and headers that need no broker or store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from gateway.api import console
from gateway.auth import Authenticator
from gateway.config import Settings

PLATFORM_KEY = "console-test-platform-key-0123"


@dataclass
class ConsoleGateway:
    """What the console's sign-in and session code read of the gateway."""

    settings: Settings
    authenticator: Authenticator
    revocations: Any = None


def console_app(settings: Settings, **attrs: Any) -> FastAPI:
    """The console router and its static files over a :class:`ConsoleGateway`."""
    app = FastAPI()
    gw = ConsoleGateway(settings, Authenticator(settings.auth), **attrs)
    app.state.gateway = gw
    app.include_router(console.router)
    app.mount("/console/static", console.static, name="console-static")
    return app
