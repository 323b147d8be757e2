"""Download the export file from storage: no credentials, streamed to disk, resumable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from tap_spaaza_users.client import backoff_delay, parse_retry_after
from tap_spaaza_users.errors import SpaazaDownloadError
from tap_spaaza_users.storage import (
    is_https_or_loopback,
    redact_url,
    redacting_queries,
    storage_session,
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from pathlib import Path

CHUNK_SIZE = 1024 * 1024
MAX_REDIRECTS = 5
PROGRESS_EVERY_SECONDS = 30.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_STATUSES = frozenset({200, 206, 416})
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_BODY_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    OSError,
)


@dataclass(frozen=True)
class DownloadResult:
    """What a finished download produced.

    Attributes:
        path: The file written (raw bytes as storage sent them; may be gzip).
        bytes: Size of the file in bytes.
        seconds: Wall time of the whole download, retries included.
        content_encoding: The Content-Encoding storage declared, if any.
        resumes: Times the body was resumed (or restarted) after a drop or short body.
        url_refreshes: Times a fresh pre-signed URL was requested after a 403.
        retries: Transient failures (5xx, 429, connection errors) retried.
    """

    path: Path
    bytes: int
    seconds: float
    content_encoding: str | None = None
    resumes: int = 0
    url_refreshes: int = 0
    retries: int = 0

    @property
    def megabytes_per_second(self) -> float:
        """Average throughput in MB/s (0 for an instant download)."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Attempts:
    """Counters and limits of one download."""

    max_url_refreshes: int
    max_resumes: int
    max_retries: int
    backoff_base: float
    backoff_cap: float
    url_refreshes: int = 0
    resumes: int = 0
    retries: int = 0

    def fail(self, why: str) -> SpaazaDownloadError:
        return SpaazaDownloadError(
            f"Export download failed: {why} (after {self.url_refreshes} URL refreshes, "
            f"{self.resumes} resumes, {self.retries} retries). No row of this file was emitted: "
            "run the sync again; if it keeps failing, check the network path to storage."
        )

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        time.sleep(
            backoff_delay(max(attempt - 1, 0), self.backoff_base, self.backoff_cap, retry_after)
        )


def _retry_after(response: requests.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def _open(
    session: requests.Session, url: str, writer: _Writer, timeout: float
) -> requests.Response:
    """GET the URL from the writer's offset, following only https redirects, forwarding nothing.

    A resume carries `If-Range` with the file's (strong) ETag, so a file that changed in the
    meantime comes back whole (200) instead of as a mismatched tail.
    """
    headers = {}
    if writer.offset:
        headers["Range"] = f"bytes={writer.offset}-"
        if writer.etag and not writer.etag.startswith("W/"):
            headers["If-Range"] = writer.etag
    for _ in range(MAX_REDIRECTS + 1):
        session.cookies.clear()
        response = session.get(
            url, headers=headers, stream=True, timeout=timeout, allow_redirects=False
        )
        session.cookies.clear()
        if response.status_code not in _REDIRECTS:
            return response
        location = response.headers.get("Location", "")
        response.close()
        url = urljoin(url, location)
        if urlsplit(url).scheme != "https":
            msg = f"storage redirected to a non-https URL ({redact_url(url)}); refusing to follow"
            raise _RedirectRefusedError(msg)
    msg = f"storage redirected more than {MAX_REDIRECTS} times"
    raise _RedirectRefusedError(msg)


class _RedirectRefusedError(Exception):
    """Storage redirected where the download must not follow."""


def _expected_total(response: requests.Response, offset: int) -> int | None:
    """Total file size from Content-Range (206) or Content-Length (200), if stated."""
    if response.status_code == 206:  # noqa: PLR2004
        content_range = response.headers.get("Content-Range", "")
        total = content_range.rpartition("/")[2]
        if total.isdigit():
            return int(total)
    length = response.headers.get("Content-Length", "")
    return offset + int(length) if length.isdigit() else None


def _range_start(response: requests.Response) -> int | None:
    """Start offset of a 206's Content-Range (`bytes START-END/TOTAL`)."""
    unit, _, spec = response.headers.get("Content-Range", "").partition(" ")
    start = spec.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


class _Writer:
    """Appends raw body bytes to the destination file and logs progress."""

    def __init__(self, out: BinaryIO, logger: logging.Logger, started: float) -> None:
        self.out = out
        self.logger = logger
        self.started = started
        self.offset = 0
        self.last_log = started
        self.encoding: str | None = None
        self.etag: str | None = None

    def restart(self) -> None:
        """Discard what was written: storage is sending the file from its start."""
        self.out.seek(0)
        self.out.truncate()
        self.offset = 0

    def drain(self, response: requests.Response) -> None:
        """Copy the body to the file; raises on a dropped connection (bytes received are kept).

        `read1` hands over whatever has arrived, so a stall that ends in a read timeout loses
        nothing already received (older urllib3 without it: whole chunks only).
        """
        raw = response.raw
        if hasattr(raw, "read1"):
            chunks = iter(lambda: raw.read1(CHUNK_SIZE, decode_content=False), b"")
        else:  # pragma: no cover - urllib3 < 2.3
            chunks = raw.stream(CHUNK_SIZE, decode_content=False)
        for chunk in chunks:
            self.out.write(chunk)
            self.offset += len(chunk)
            now = time.monotonic()
            if now - self.last_log >= PROGRESS_EVERY_SECONDS:
                self.last_log = now
                self.logger.info(
                    "Export download: %d bytes so far in %.1f s", self.offset, now - self.started
                )


def _handle_status(response: requests.Response, attempts: _Attempts, writer: _Writer) -> str:
    """Decide what a response means: 'body', 'refresh', 'retry' or 'done'."""
    status = response.status_code
    if status in _BODY_STATUSES:
        return _range_outcome(response, writer)
    if status == 403:  # noqa: PLR2004 - expired or rejected signature
        return "refresh"
    if status in _TRANSIENT:
        return "retry"
    why = f"storage answered HTTP {status}"
    raise attempts.fail(why)


def _range_outcome(response: requests.Response, writer: _Writer) -> str:
    """Match a 200/206/416 to what the file holds so far; restart the file if they disagree."""
    status = response.status_code
    if status == 200:  # noqa: PLR2004 - the whole file (storage ignored Range, or If-Range)
        if writer.offset:
            writer.restart()
        return "body"
    if status == 206 and _range_start(response) == writer.offset:  # noqa: PLR2004
        return "body"
    if status == 416 and response.headers.get("Content-Range") == f"bytes */{writer.offset}":  # noqa: PLR2004
        return "done"  # every byte is already here
    writer.restart()
    return "retry"


class _Download:
    """One download in progress: the session, the counters and the file being written."""

    def __init__(
        self, session: requests.Session, timeout: float, attempts: _Attempts, writer: _Writer
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.attempts = attempts
        self.writer = writer

    def request(self, url: str) -> str:
        """GET the URL from the current offset and copy what comes: 'done', 'refresh', 'again'."""
        try:
            response = _open(self.session, url, self.writer, self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.retry(f"connection failed ({type(exc).__name__})", None)
            return "again"
        except requests.RequestException as exc:  # e.g. a malformed URL: not worth retrying
            why = f"request failed ({type(exc).__name__})"
            raise self.attempts.fail(why) from None
        except _RedirectRefusedError as exc:
            raise self.attempts.fail(str(exc)) from None
        with response:
            action = _handle_status(response, self.attempts, self.writer)
            if action == "refresh":
                if self.attempts.url_refreshes >= self.attempts.max_url_refreshes:
                    msg = "storage kept refusing the signed URL (HTTP 403)"
                    raise self.attempts.fail(msg) from None
                self.attempts.url_refreshes += 1
                self.writer.logger.info(
                    "Export download: storage refused the URL; asking for a fresh one"
                )
                return "refresh"
            if action == "retry":
                why = f"storage answered HTTP {response.status_code}"
                self.retry(why, _retry_after(response))
                return "again"
            if action == "done":
                return "done"
            return self.copy_body(response)

    def copy_body(self, response: requests.Response) -> str:
        """Copy a 200/206 body; decide whether the file is complete."""
        writer = self.writer
        writer.encoding = response.headers.get("Content-Encoding") or writer.encoding
        writer.etag = response.headers.get("ETag") or writer.etag
        total = _expected_total(response, writer.offset)
        try:
            writer.drain(response)
        except _BODY_ERRORS as exc:
            self.resume(f"connection dropped ({type(exc).__name__})")
            return "again"
        if total is not None and writer.offset < total:
            self.resume(f"short body ({writer.offset} of {total} bytes)")
            return "again"
        if total is not None and writer.offset > total:
            msg = f"storage sent more bytes than announced ({writer.offset} > {total})"
            raise self.attempts.fail(msg)
        return "done"

    def retry(self, why: str, retry_after: float | None) -> None:
        """Count a transient failure and back off, or give up."""
        attempts = self.attempts
        if attempts.retries >= attempts.max_retries:
            raise attempts.fail(why) from None
        attempts.retries += 1
        self.writer.logger.info("Export download: %s; retrying", why)
        attempts.pause(attempts.retries, retry_after)

    def resume(self, why: str) -> None:
        """Count a resume after a drop or short body, or give up."""
        attempts = self.attempts
        if attempts.resumes >= attempts.max_resumes:
            raise attempts.fail(why) from None
        attempts.resumes += 1
        self.writer.logger.info("Export download: %s; resuming at byte %d", why, self.writer.offset)
        attempts.pause(attempts.resumes)


def download_export(  # noqa: PLR0913
    url_provider: Callable[[], str],
    dest: Path,
    *,
    timeout: float,
    user_agent: str,
    logger: logging.Logger,
    max_retries: int,
    backoff_base: float,
    backoff_cap: float,
    max_url_refreshes: int = 3,
    max_resumes: int = 5,
) -> DownloadResult:
    """Download the export file to `dest`, streamed in chunks, with no credentials on the wire.

    Args:
        url_provider: Returns a (fresh) pre-signed URL; called once, then again after a 403.
        dest: File to write (raw bytes, as storage sent them; gzip is decoded when reading).
        timeout: Connect and read timeout of each request, in seconds.
        user_agent: User-Agent header.
        logger: Where progress is logged (never the URL's query string).
        max_retries: Retries of transient failures (5xx, 429, connection errors):
            the ``max_retries`` setting.
        backoff_base: First backoff delay in seconds (doubles, with jitter): the
            ``retry_initial_wait_seconds`` setting.
        backoff_cap: Longest backoff delay in seconds: the ``retry_max_wait_seconds`` setting.
        max_url_refreshes: Fresh URLs to ask for after 403 (expired or rejected signature).
        max_resumes: Resumes with Range after a dropped connection or a short body.

    Returns:
        The path, size, duration and retry counters of the download.

    Raises:
        SpaazaDownloadError: When a limit is exhausted or storage answers an unexpected status.
    """
    attempts = _Attempts(max_url_refreshes, max_resumes, max_retries, backoff_base, backoff_cap)
    url = url_provider()
    logger.info("Downloading export file from %s", redact_url(url))
    if not is_https_or_loopback(url):
        logger.warning("The download URL is not https: the file travels unencrypted")
    started = time.monotonic()
    with (
        redacting_queries(),
        storage_session(user_agent) as session,
        dest.open("wb") as out,
    ):
        download = _Download(session, timeout, attempts, _Writer(out, logger, started))
        while (outcome := download.request(url)) != "done":
            if outcome == "refresh":
                url = url_provider()
        size = download.writer.offset
        encoding = download.writer.encoding
    seconds = time.monotonic() - started
    result = DownloadResult(
        dest, size, seconds, encoding, attempts.resumes, attempts.url_refreshes, attempts.retries
    )
    logger.info(
        "Downloaded export file: %d bytes in %.2f s (%.1f MB/s)",
        result.bytes,
        seconds,
        result.megabytes_per_second,
    )
    return result
