"""The FastAPI application; its lifespan is the composition root of the running gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from gateway.api import (
    alerts,
    audit,
    console,
    devices,
    doors,
    events,
    health,
    ingest,
    residents,
    stream,
    tickets,
)
from gateway.api.docs import install as install_docs
from gateway.api.errors import validation_error
from gateway.api.headers import ConsoleHeaders
from gateway.config import Registry, Settings
from gateway.service import Gateway


def create_app(settings: Settings, registry: Registry, gateway: Gateway | None = None) -> FastAPI:
    """Build the app; the gateway starts with the app and stops with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = gateway or Gateway(settings, registry)
        app.state.gateway = gw
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(
        title="Courtyard",
        version="1",
        description="Smart-community IoT gateway: devices, readings, events.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves them from the package, not from a CDN
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(doors.router)  # the order routes are matched in
    app.include_router(health.router)
    app.include_router(alerts.router)
    app.include_router(tickets.router)
    app.include_router(devices.router)
    app.include_router(stream.router)  # before events: /events/stream is not an id
    app.include_router(events.router)
    app.include_router(audit.router)
    app.include_router(residents.router)  # revoking residents' tokens
    app.include_router(ingest.router)  # HTTP push from cameras and controllers
    app.include_router(console.router)  # the web console (dashboards/console)
    app.mount("/console/static", console.static, name="console-static")
    install_docs(app)  # the site root (to the console), /docs and /redoc
    app.add_middleware(ConsoleHeaders)  # CSP, no framing, no sniffing under /console
    return app
