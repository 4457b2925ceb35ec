"""A real HTTP receiver for webhooks that verifies every signature with standardwebhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test secret (base64)


class Receiver:
    """``respond()`` decides each answer: (status, headers). ``strict_time``: full
    ``Webhook.verify`` (timestamp within 5 minutes of real time); otherwise the signature is
    checked against the request's own timestamp (for tests on a fake clock)."""

    def __init__(self, secret: str = SECRET, *, strict_time: bool = True) -> None:
        self.wh = Webhook(secret)
        self.strict_time = strict_time
        self.respond: Callable[[], tuple[int, dict[str, str]]] = lambda: (204, {})
        self.received: list[dict[str, Any]] = []  # accepted deliveries
        self.attempts: list[str] = []  # every webhook-id seen, answered or not
        self.bad_signatures = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real platform

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                arrived = time.time()
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = outer.verify(body, headers)
                status, extra = outer.respond() if ok else (401, {})
                with outer.lock:
                    outer.attempts.append(headers.get("webhook-id", ""))
                    if not ok:
                        outer.bad_signatures += 1
                    elif 200 <= status < 300:
                        outer.received.append(
                            {"id": headers["webhook-id"], "at": arrived, **json.loads(body)}
                        )
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        try:
            if self.strict_time:
                self.wh.verify(body, headers)
                return True
            ts = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = self.wh.sign(headers["webhook-id"], ts, body.decode())
            return expected in headers["webhook-signature"].split(" ")
        except Exception:
            return False

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["type"] == type_]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
