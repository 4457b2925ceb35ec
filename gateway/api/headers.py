"""Browser protections for the web console: every answer under ``/console`` (pages, static
files, redirects, the CSV export, errors) carries a Content-Security-Policy, X-Frame-Options
and X-Content-Type-Options.

The policy allows the gateway's own scripts, styles and connections only: the console has no
inline script or style (its charts are SVG presentation attributes), so an injected
``<script>`` or ``onclick=`` never runs, and no other origin can be framed, loaded or posted to.
Framing is refused twice (``frame-ancestors`` and ``X-Frame-Options`` for older browsers): a
page that frames the console cannot trick a guard into clicking *Acknowledge*.

A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: other paths (the unlock above
all) pay one string comparison and nothing else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CONSOLE_HEADERS = [
    (b"content-security-policy", CONSOLE_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_NAMES = {name for name, _ in CONSOLE_HEADERS}


class ConsoleHeaders:
    """Adds :data:`CONSOLE_HEADERS` to every HTTP answer whose path starts with ``prefix``."""

    def __init__(self, app: ASGIApp, prefix: str = "/console") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message = {**message, "headers": kept + CONSOLE_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)
