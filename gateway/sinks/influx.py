"""The InfluxDB sink: journal telemetry forwarded from a durable cursor, at least once.

One thread reads the journal after the cursor ``influx``, writes a batch synchronously, then
saves the cursor. Outages, bad tokens and missing buckets are retried forever (backoff with
full jitter, ``Retry-After``): no batch is given up. A batch refused as malformed is bisected
so that only the offending points become dead letters. v2 uses influxdb-client in SYNCHRONOUS
mode (its batching mode loses errors); v1 (InfluxDB 1.x) posts to ``/write``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from gateway.config import InfluxSettings
from gateway.sinks.lineproto import Encoded, RawEncoder, payload
from gateway.store.reader import JournalReader

CURSOR = "influx"
IDLE_WAIT_S = 1.0  # when caught up, look again after this long even without notify()
MAX_RETRY_AFTER_S = 300.0
REJECTED_STATUSES = frozenset({400, 413, 422})  # bisect; every other failure is retried


class InfluxError(Exception):
    """A write that did not happen: ``status`` (None without a response) and the message."""

    def __init__(self, message: str, status: int | None = None, retry_after: str | None = None):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status, self.message, self.retry_after = status, message, retry_after


class InfluxUnavailable(InfluxError):
    """Retry the same batch later: network error, 5xx, 429, 401/403/404 and the like."""


class InfluxRejected(InfluxError):
    """The server refused the content (400, 413, 422): bisect to find the points at fault."""


@dataclass(slots=True)
class SinkCounters:
    """What :meth:`InfluxSink.stats` reports; written by the sink thread only."""

    points_written_total: int = 0
    batches_total: int = 0  # journal batches delivered
    retries_total: int = 0
    rejected_points_total: int = 0  # dead letters "influx_rejected"
    skipped_rows_total: int = 0  # dead letters "influx_unencodable"
    dropped_fields_total: int = 0  # readings left out of a point (non-finite, not a number)
    cursor: int = 0
    head: int = 0
    healthy: bool = True
    last_error: str = ""


class Writer(Protocol):
    def write(self, body: bytes) -> None: ...
    def close(self) -> None: ...


def http_error(status: int, body: bytes | str | None, retry_after: str | None) -> InfluxError:
    """Classify a non-2xx answer; the message is the server's (``error``/``message``)."""
    raw = (body.encode() if isinstance(body, str) else body) or b""
    try:
        doc = orjson.loads(raw)
        message = str(doc.get("message") or doc.get("error") or doc)
    except (orjson.JSONDecodeError, AttributeError):
        message = raw.decode(errors="replace").strip()
    kind = InfluxRejected if status in REJECTED_STATUSES else InfluxUnavailable
    return kind(message[:300], status, retry_after)


class V1Writer:
    """``POST /write?db=...&precision=ms`` with optional basic auth (InfluxDB 1.x)."""

    def __init__(self, settings: InfluxSettings) -> None:
        auth = (settings.username, settings.password) if settings.username else None
        self._params = {"db": settings.database, "precision": "ms"}
        self._client = httpx.Client(
            base_url=settings.url, timeout=settings.timeout_s, verify=settings.verify_tls, auth=auth
        )

    def write(self, body: bytes) -> None:
        try:
            resp = self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not resp.is_success:
            raise http_error(resp.status_code, resp.content, resp.headers.get("Retry-After"))

    def close(self) -> None:
        self._client.close()


class V2Writer:
    """influxdb-client's ``WriteApi`` in SYNCHRONOUS mode (its batching mode loses errors)."""

    def __init__(self, s: InfluxSettings) -> None:
        self._target: dict[str, Any] = {"bucket": s.bucket, "org": s.org, "write_precision": "ms"}
        self._client = InfluxDBClient(
            s.url, s.token, org=s.org, timeout=int(s.timeout_s * 1000), verify_ssl=s.verify_tls
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, body: bytes) -> None:
        try:
            self._api.write(record=body, **self._target)
        except ApiException as exc:
            if exc.status is None:
                raise InfluxUnavailable(str(exc.reason or exc)) from exc
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            raise http_error(exc.status, exc.body, retry_after) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP date)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None


class InfluxSink:
    """Forwards journal telemetry to InfluxDB from one named daemon thread.

    ``start()``/``stop()``; ``notify()`` after each journal commit; ``stats()`` for
    ``/metrics``; ``flush(timeout)`` waits until the cursor reaches the journal head.
    ``sleep`` (backoff waits) and ``now`` (epoch seconds) are injectable for tests; the
    default sleep wakes up as soon as ``stop()`` is called.
    """

    cursor: str | None = CURSOR
    supervised = False

    def __init__(
        self,
        settings: InfluxSettings,
        db_path: str,
        *,
        batch_size: int = 5000,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        logger: logging.Logger | None = None,
        writer: Writer | None = None,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings, self.db_path, self.batch_size = settings, db_path, batch_size
        self._now, self._sleep, self._writer = now, sleep, writer
        self._log = logger or logging.getLogger("courtyard.sinks.influx")
        self._base, self._cap, self._jitter = backoff_base_s, backoff_cap_s, jitter
        self._thread: threading.Thread | None = None
        self._stop, self._wake = threading.Event(), threading.Event()
        self._progress = threading.Condition()  # notified when the cursor moves
        self._failing_since: float | None = None
        secrets = (settings.token, settings.password, urlsplit(settings.url).password)
        self._secrets = [s for s in secrets if s]
        self._oldest_unsent_ms: int | None = None
        self._started = self._passes = 0  # passes of the loop begun and ended, for flush()
        self.counters = SinkCounters()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="courtyard-influx-sink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Finish the batch being written (not a backoff wait) and join; False on timeout."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)  # a write in flight ends within timeout_s; its cursor is unsaved
        return thread is None or not thread.is_alive()

    def notify(self) -> None:
        """New rows are in the journal (called by the ingest after each commit)."""
        self._wake.set()

    def supervise(self) -> None:
        """A thread of the gateway's own process: nothing to restart."""
        return

    def wait_progress(self, timeout: float) -> None:
        """Block until the cursor moves (a batch written, rows skipped) or ``timeout``."""
        with self._progress:
            self._progress.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until the cursor reaches the journal head as it is now; False on timeout."""
        with closing(JournalReader(self.db_path)) as reader:
            target = reader.head()
        done = self._started + 1  # a pass of the loop that starts after this call must end
        self.notify()
        with self._progress:
            return self._progress.wait_for(
                lambda: self._passes >= done and self.counters.cursor >= target, timeout
            )

    def stats(self) -> dict[str, Any]:
        """:class:`SinkCounters` + ``lag_points`` (journal rows) and ``lag_seconds``."""
        out = asdict(self.counters)
        oldest = self._oldest_unsent_ms
        out["lag_points"] = max(0, out["head"] - out["cursor"])
        out["lag_seconds"] = 0.0 if oldest is None else max(0.0, self._now() - oldest / 1000)
        return out

    def _run(self) -> None:
        reader, writer, attempt = JournalReader(self.db_path), self._writer, 0
        try:
            while not self._stop.is_set():
                try:
                    if writer is None:
                        s = self.settings
                        writer = V1Writer(s) if s.api == "v1" else V2Writer(s)
                    self._loop(reader, writer)
                except Exception as exc:  # task boundary: the cursor is durable, start over
                    self.counters.healthy, self.counters.last_error = False, self._scrub(repr(exc))
                    self._log.exception("the InfluxDB sink failed; restarting it")
                    attempt += 1
                    if self._pause(self._backoff(attempt)):
                        break
        finally:
            if writer is not None and self._writer is None:
                writer.close()
            reader.close()

    def _loop(self, reader: JournalReader, writer: Writer) -> None:
        cursor = reader.load_cursor(CURSOR)
        self._advance(cursor, reader)
        encoder = RawEncoder(reader.device)
        while not self._stop.is_set():
            self._wake.clear()
            self._started += 1
            # the head before the read: every telemetry row up to it is visible to the read
            head = self.counters.head = reader.head()
            if head < cursor:  # the journal was emptied and its ids start again: replay it
                self._log.warning("journal head %d is behind the cursor %d", head, cursor)
                cursor = 0
            rows = reader.read_raw(cursor, self.batch_size)
            position = cursor
            if rows:
                encoded = encoder.encode(rows, reader.read_telemetry_ids)
                self._dead_letter_unencodable(reader, encoded)
                if encoded.lines:
                    if not self._deliver(reader, writer, encoded):
                        return  # stopped during a backoff: the batch stays unsent
                    self.counters.batches_total += 1
                position = rows[-1].id
            caught_up = len(rows) < self.batch_size
            if caught_up:
                position = max(position, head)  # skip past events, status rows and gaps
            if position != cursor:
                reader.save_cursor(CURSOR, position)
                cursor = position
            self._advance(cursor, reader)
            if caught_up:
                self._wake.wait(IDLE_WAIT_S)

    def _advance(self, cursor: int, reader: JournalReader) -> None:
        self._oldest_unsent_ms = reader.oldest_after(cursor)
        with self._progress:
            self.counters.cursor = cursor
            self._passes = self._started
            self._progress.notify_all()

    def _deliver(self, reader: JournalReader, writer: Writer, batch: Encoded) -> bool:
        """Write every line, bisecting rejected runs; False when stopped while retrying."""
        runs = [(0, len(batch.lines))]
        rejected: list[str] = []
        while runs:
            lo, hi = runs.pop()
            try:
                if not self._write(reader, writer, batch.lines[lo:hi]):
                    return False
            except InfluxRejected as exc:
                self._recovered()  # the server answered: it is up
                if hi - lo > 1:
                    mid = (lo + hi) // 2
                    runs += [(mid, hi), (lo, mid)]
                    continue
                topic, line = f"influx:{batch.rows[lo].device}", batch.lines[lo].encode()
                reader.dead_letter(topic, "influx_rejected", exc.message or str(exc), line)
                self.counters.rejected_points_total += 1
                rejected.append(exc.message)
            else:
                self.counters.points_written_total += hi - lo
        if rejected:
            n, first = len(rejected), rejected[0]
            self._log.warning("InfluxDB rejected %d point(s), now dead letters: %s", n, first)
        return True

    def _write(self, reader: JournalReader, writer: Writer, lines: Sequence[str]) -> bool:
        """Write one run, retrying outages until it succeeds (True) or stop() (False)."""
        body = payload(lines)
        attempt = 0
        while True:
            try:
                writer.write(body)
            except InfluxUnavailable as exc:
                delay = self._backoff(attempt, exc.retry_after)
                attempt += 1
                self._failing(exc, reader, delay)
                if self._pause(delay):
                    return False
            else:
                self._recovered()
                return True

    def _backoff(self, attempt: int, retry_after: str | None = None) -> float:
        """``Retry-After`` when the server sent one, else full jitter in [0, base * 2**n]."""
        wait = parse_retry_after(retry_after, self._now()) if retry_after else None
        if wait is not None:
            return min(wait, MAX_RETRY_AFTER_S)
        cap: float = min(self._cap, self._base * 2 ** min(attempt, 30))
        return self._jitter() * cap

    def _pause(self, seconds: float) -> bool:
        """Wait between attempts; True when stop() was called."""
        if self._sleep is None:
            return self._stop.wait(seconds)
        self._sleep(seconds)
        return self._stop.is_set()

    def _failing(self, exc: InfluxError, reader: JournalReader, delay: float) -> None:
        c = self.counters
        c.healthy, c.last_error, c.head = False, self._scrub(str(exc)), reader.head()
        self._oldest_unsent_ms = reader.oldest_after(c.cursor)
        c.retries_total += 1
        self._log.debug("InfluxDB write failed (%s); retrying in %.2f s", c.last_error, delay)
        if self._failing_since is None:
            self._failing_since = self._now()
            s = self.settings
            where = f"bucket {s.bucket!r}" if s.api == "v2" else f"database {s.database!r}"
            msg = "InfluxDB writes failing (%s, %s): %s; retrying, the journal keeps the data"
            self._log.warning(msg, self._scrub(s.url), where, c.last_error)

    def _recovered(self) -> None:
        c = self.counters
        c.healthy = True
        if self._failing_since is not None:
            waited, self._failing_since = self._now() - self._failing_since, None
            msg = "InfluxDB writes recovered after %.1f s; %d journal rows had waited"
            self._log.info(msg, waited, max(0, c.head - c.cursor))

    def _dead_letter_unencodable(self, reader: JournalReader, batch: Encoded) -> None:
        self.counters.dropped_fields_total += batch.dropped_fields
        for row, reason in batch.skipped:
            topic = f"influx:{row.device}"
            reader.dead_letter(topic, "influx_unencodable", reason, row.body.encode())
            self.counters.skipped_rows_total += 1
        if batch.skipped:
            msg = "%d journal row(s) cannot be line protocol, now dead letters: %s"
            self._log.warning(msg, len(batch.skipped), batch.skipped[0][1])

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
