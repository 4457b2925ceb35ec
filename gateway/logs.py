"""Logging set-up shared by the gateway process and the processes it starts."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# one line per HTTP request is noise: the sinks log their transitions themselves
NOISY = ("httpx", "httpcore", "urllib3", "influxdb_client")


def setup(level: int) -> None:
    """Log to stderr at ``level``, the HTTP client libraries at WARNING or above."""
    logging.basicConfig(level=level, format=FORMAT)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
