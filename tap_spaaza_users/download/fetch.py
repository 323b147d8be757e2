"""Download the export file from storage: no credentials, resumable, proven whole.

A download is complete only when its length is proven (``Content-Length``, the total of a
``Content-Range``, or a ``Range`` request from the end answering 416), its MD5 matches the
ETag when storage states one, and a gzip file decompresses whole. A drip is cut off by a
floor on progress, and the whole download by a deadline.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3.exceptions

from tap_spaaza_users.api.retries import backoff_delay, parse_retry_after
from tap_spaaza_users.download.integrity import BodyCheck, md5_of_etag, new_md5
from tap_spaaza_users.download.storage import (
    is_loopback,
    redact_url,
    redacting_queries,
    storage_session,
)
from tap_spaaza_users.errors import (
    SpaazaCorruptExportError,
    SpaazaDownloadError,
    SpaazaFileUnobtainableError,
)
from tap_spaaza_users.logs.fields import log_fields

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from tap_spaaza_users.download.spool import Spool

CHUNK_SIZE = 1024 * 1024
MAX_REDIRECTS = 5
PROGRESS_EVERY_SECONDS = 10.0
#: The slowest progress a download may make over a window (then it is resumed).
FLOOR_BYTES_PER_SECOND = 16 * 1024
#: The floor's window, in request timeouts (``request_timeout_seconds``), and at least 1 s.
FLOOR_WINDOW_TIMEOUTS = 2
#: Downloads of a file that arrives corrupt (a bad MD5 or gzip) before giving up.
MAX_WHOLE_DOWNLOADS = 2
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
        bytes: Size of the file in bytes (raw, as storage sent them; may be gzip).
        seconds: Wall time of the whole download, retries included.
        content_encoding: The Content-Encoding storage declared, if any.
        resumes: Times the body was resumed (or restarted) after a drop, a short body or a drip.
        url_refreshes: Times a fresh pre-signed URL was requested (after a 403 or a corrupt file).
        retries: Transient failures (5xx, 429, connection errors) retried.
        md5_checked: Whether the file's MD5 was checked against storage's ETag.
        downloads: Whole downloads of the file (2 when the first arrived corrupt).
    """

    bytes: int
    seconds: float
    content_encoding: str | None = None
    resumes: int = 0
    url_refreshes: int = 0
    retries: int = 0
    md5_checked: bool = False
    downloads: int = 1

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
    task_id: int | None = None
    url_refreshes: int = 0
    resumes: int = 0
    retries: int = 0

    def fail(self, why: str) -> SpaazaDownloadError:
        kept = f"; export task {self.task_id} is kept for it" if self.task_id is not None else ""
        return SpaazaDownloadError(
            f"Export download failed: {why} (after {self.url_refreshes} URL refreshes, "
            f"{self.resumes} resumes, {self.retries} retries). The bookmark did not move: "
            f"run the sync again{kept}; if it keeps failing, check the network path to storage."
        )

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        time.sleep(
            backoff_delay(max(attempt - 1, 0), self.backoff_base, self.backoff_cap, retry_after)
        )


def _retry_after(response: requests.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def _refuse_plain_http(url: str) -> None:
    """Refuse a URL (or a redirect) that is not one, or on plain http to another host."""
    parts = _valid_url(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        msg = (
            f"the download URL is plain http to {parts.hostname} ({redact_url(url)}), so "
            "every user's personal data would cross the network unencrypted; refusing it "
            "(ask Spaaza for https download URLs)"
        )
        raise _RefusedError(msg)


def _valid_url(url: str) -> SplitResult:
    """The parts of a download URL, refusing one whose host or port cannot be read."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it: a number from 0 to 65535
        requests.PreparedRequest().prepare_url(url, None)
    except ValueError:  # a broken [IPv6 literal, port 99999, requests' InvalidURL
        msg = (
            "storage gave a download URL (or redirect) whose host or port is not valid; "
            "report the task id to Spaaza"
        )
        raise _RefusedError(msg) from None
    return parts


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
        try:
            url = urljoin(url, location)
        except ValueError:
            url = location
        if _valid_url(url).scheme != "https":
            msg = f"storage redirected to a non-https URL ({redact_url(url)}); refusing to follow"
            raise _RefusedError(msg)
    msg = f"storage redirected more than {MAX_REDIRECTS} times"
    raise _RefusedError(msg)


class _RefusedError(Exception):
    """Storage sent the download where it must not go (plain http, too many redirects)."""


class _TooSlowError(Exception):
    """The body arrived slower than the floor over a whole window."""


class _PastDeadlineError(Exception):
    """The download as a whole took longer than its deadline."""


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


def _megabytes(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


class _Writer:
    """Appends raw body bytes to the spool, hashes them, watches the pace and logs progress."""

    def __init__(self, spool: Spool, logger: logging.Logger, pace: _Pace) -> None:
        self.spool = spool
        self.logger = logger
        self.pace = pace
        self.offset = 0
        self.md5 = new_md5()
        self.check = BodyCheck()
        self.encoding: str | None = None
        self.etag: str | None = None
        self.total: int | None = None
        self.length_unproven = False

    def restart(self) -> None:
        """Discard what was written: storage is sending the file from its start."""
        self.spool.restart()
        self.offset = 0
        self.md5 = new_md5()
        self.check.restart()

    def drain(self, response: requests.Response) -> None:
        """Copy the body to the spool; raises on a dropped connection (bytes received are kept).

        `read1` hands over whatever has arrived, so a stall that ends in a read timeout loses
        nothing already received (older urllib3 without it: whole chunks only).

        Raises:
            _TooSlowError: When the body arrives slower than the floor over a window.
        """
        raw = response.raw
        if hasattr(raw, "read1"):
            chunks = iter(lambda: raw.read1(CHUNK_SIZE, decode_content=False), b"")
        else:  # pragma: no cover - urllib3 < 2.3
            chunks = raw.stream(CHUNK_SIZE, decode_content=False)
        self.pace.begin(self.offset)
        for chunk in chunks:
            self.spool.write(chunk)
            self.md5.update(chunk)
            self.check.feed(chunk)
            self.offset += len(chunk)
            self.pace.check(self.offset, self)

    def progress(self, elapsed: float, rate: float) -> None:
        """Log bytes of total, percent, MB/s and the time left."""
        speed = f"{rate / 1e6:.1f} MB/s"
        fields = log_fields(
            bytes=self.offset, total_bytes=self.total, megabytes_per_second=rate / 1e6
        )
        if self.total:
            left = (self.total - self.offset) / rate if rate > 0 else float("inf")
            self.logger.info(
                "Export download: %s of %s (%.0f%%), %s, about %s left",
                _megabytes(self.offset),
                _megabytes(self.total),
                100 * self.offset / self.total,
                speed,
                f"{left:.0f} s" if left != float("inf") else "unknown time",
                extra=fields,
            )
        else:
            self.logger.info(
                "Export download: %s so far in %.0f s (size not stated), %s",
                _megabytes(self.offset),
                elapsed,
                speed,
                extra=fields,
            )


class _Pace:
    """The download's deadline, its floor on progress, and the cadence of progress lines."""

    def __init__(
        self, *, window: float, deadline: float | None, progress_every: float, started: float
    ) -> None:
        self.window = window
        self.deadline = deadline
        self.progress_every = progress_every
        self.started = started
        self.mark_time = started
        self.mark_offset = 0
        self.last_log = started
        self.last_log_offset = 0

    def begin(self, offset: int) -> None:
        """A body starts: its progress is measured from here."""
        self.mark_time = time.monotonic()
        self.mark_offset = offset

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() - self.started > self.deadline

    def check(self, offset: int, writer: _Writer) -> None:
        """After each chunk: enforce the deadline and the floor, log progress now and then."""
        now = time.monotonic()
        if self.past_deadline():
            raise _PastDeadlineError
        if now - self.mark_time >= self.window:
            rate = (offset - self.mark_offset) / (now - self.mark_time)
            if rate < FLOOR_BYTES_PER_SECOND:
                why = (
                    f"storage sent {rate:.0f} bytes/s over the last {now - self.mark_time:.0f} s, "
                    f"below the floor of {FLOOR_BYTES_PER_SECOND} bytes/s"
                )
                raise _TooSlowError(why)
            self.mark_time, self.mark_offset = now, offset
        if now - self.last_log >= self.progress_every:
            rate = (offset - self.last_log_offset) / (now - self.last_log)
            self.last_log, self.last_log_offset = now, offset
            writer.progress(now - self.started, rate)


def _handle_status(response: requests.Response, attempts: _Attempts, writer: _Writer) -> str:
    """Decide what a response means: 'body', 'refresh', 'retry' or 'done'."""
    status = response.status_code
    if status in _BODY_STATUSES:
        return _range_outcome(response, writer)
    if status == 403:  # noqa: PLR2004 - expired or rejected signature
        return "refresh"
    if status == HTTPStatus.NOT_FOUND:  # NoSuchKey: storage expired the file
        task = f"Export task {attempts.task_id}" if attempts.task_id is not None else "The export"
        msg = (
            f"{task}: storage answered HTTP 404{_s3_code(response)}: the file is gone (storage "
            "expired it) although the task is DONE"
        )
        raise SpaazaFileUnobtainableError(msg)
    if status in _TRANSIENT:
        return "retry"
    why = f"storage answered HTTP {status}"
    raise attempts.fail(why)


def _s3_code(response: requests.Response) -> str:
    """The S3 error code of an XML error body, as `` (NoSuchKey)``, or an empty string."""
    try:
        found = re.search(r"<Code>([A-Za-z]{1,64})</Code>", response.text[:4096])
    except requests.RequestException:
        return ""
    return f" ({found.group(1)})" if found else ""


def _url_expired(response: requests.Response) -> bool:
    """Whether a 403 says the signed URL expired or its signature was rejected."""
    try:
        text = response.text[:4096].lower()
    except requests.RequestException:
        return False
    return "expired" in text or "signature" in text


def _range_outcome(response: requests.Response, writer: _Writer) -> str:
    """Match a 200/206/416 to what the file holds so far; restart the file if they disagree."""
    status = response.status_code
    if status == 200:  # noqa: PLR2004 - the whole file (storage ignored Range, or If-Range)
        if writer.offset:
            writer.restart()
        return "body"
    etag = response.headers.get("ETag")
    same_file = not (etag and writer.etag) or etag == writer.etag
    if status == 206 and _range_start(response) == writer.offset and same_file:  # noqa: PLR2004
        return "body"
    if status == 416 and response.headers.get("Content-Range") == f"bytes */{writer.offset}":  # noqa: PLR2004
        return "done"  # every byte is already here: the length is proven
    writer.restart()
    return "retry"


class _Download:
    """One download in progress: the session, the counters and the spool being written."""

    def __init__(
        self, session: requests.Session, timeout: float, attempts: _Attempts, writer: _Writer
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.attempts = attempts
        self.writer = writer
        #: Storage answered 403 to a Range request: from then on the file is fetched whole.
        self.range_refused = False

    def request(self, url: str) -> str:
        """GET the URL from the current offset and copy what comes: 'done', 'refresh', 'again'."""
        if self.writer.pace.past_deadline():
            raise self.past_deadline()
        if self.range_refused and self.writer.offset:
            self.writer.restart()  # no Range any more: a resume starts from the first byte
        try:
            response = _open(self.session, url, self.writer, self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.retry(f"connection failed ({type(exc).__name__})", None)
            return "again"
        except requests.RequestException as exc:  # e.g. a malformed URL: not worth retrying
            why = f"request failed ({type(exc).__name__})"
            raise self.attempts.fail(why) from None
        except _RefusedError as exc:
            raise self.attempts.fail(str(exc)) from None
        with response:
            action = _handle_status(response, self.attempts, self.writer)
            if action == "refresh":
                ranged = "Range" in response.request.headers
                return self.refused(ranged=ranged and not _url_expired(response))
            if action == "retry":
                why = f"storage answered HTTP {response.status_code}"
                self.retry(why, _retry_after(response))
                return "again"
            if action == "done":
                self.writer.length_unproven = False
                return "done"
            if self.writer.length_unproven:  # the check that nothing follows found more
                self.writer.length_unproven = False
                why = (
                    "the body ended without a stated length, and storage has more after it"
                    if response.status_code == 206  # noqa: PLR2004
                    else "storage stated no length and ignores Range, so the file cannot be "
                    "proven whole; downloading it again"
                )
                self.resume(why, pause=False)
            return self.copy_body(response)

    def refused(self, *, ranged: bool) -> str:
        """After a 403: 'again' without Range (once, if it was ranged), else 'refresh'.

        Some storage refuses Range with 403 while a plain GET works: a ranged request
        refused for another reason than an expired or rejected signature is asked for once
        more from the start of the file without Range. Otherwise a fresh URL is asked for.
        """
        if ranged and not self.range_refused:
            self.range_refused = True
            self.writer.logger.warning(
                "Export download: storage refused a Range request (HTTP 403); downloading "
                "the file again from its start, without Range"
            )
            self.writer.restart()
            return "again"
        if self.attempts.url_refreshes >= self.attempts.max_url_refreshes:
            msg = "storage kept refusing the signed URL (HTTP 403)"
            raise self.attempts.fail(msg) from None
        self.attempts.url_refreshes += 1
        self.writer.logger.info("Export download: storage refused the URL; asking for a fresh one")
        return "refresh"

    def copy_body(self, response: requests.Response) -> str:
        """Copy a 200/206 body; decide whether the file is complete."""
        writer = self.writer
        if response.status_code == 200:  # noqa: PLR2004 - a whole body: its own headers
            writer.encoding = response.headers.get("Content-Encoding")
            writer.etag = response.headers.get("ETag")
        else:
            writer.encoding = response.headers.get("Content-Encoding") or writer.encoding
            writer.etag = response.headers.get("ETag") or writer.etag
        total = _expected_total(response, writer.offset)
        writer.total = total
        writer.spool.announce(total)
        try:
            writer.drain(response)
        except _BODY_ERRORS as exc:
            self.resume(f"connection dropped ({type(exc).__name__})")
            return "again"
        except _TooSlowError as exc:
            self.resume(str(exc))
            return "again"
        except _PastDeadlineError:
            raise self.past_deadline() from None
        if total is None:
            # Storage stated no length: only a Range from the end answering 416 proves that
            # nothing follows (a 206 there is the rest of a body that ended early).
            writer.length_unproven = True
            return "again"
        if writer.offset < total:
            self.resume(f"short body ({writer.offset} of {total} bytes)")
            return "again"
        if writer.offset > total:
            msg = f"storage sent more bytes than announced ({writer.offset} > {total})"
            raise self.attempts.fail(msg)
        return "done"

    def past_deadline(self) -> SpaazaDownloadError:
        """The error of a download that took longer than its deadline."""
        writer = self.writer
        of = f" of {writer.total}" if writer.total else ""
        why = (
            f"the download did not finish within {writer.pace.deadline:g} s "
            f"(task_timeout_minutes), {writer.offset}{of} bytes received"
        )
        return self.attempts.fail(why)

    def retry(self, why: str, retry_after: float | None) -> None:
        """Count a transient failure and back off, or give up."""
        attempts = self.attempts
        if attempts.retries >= attempts.max_retries:
            raise attempts.fail(why) from None
        attempts.retries += 1
        self.writer.logger.info("Export download: %s; retrying", why)
        attempts.pause(attempts.retries, retry_after)

    def resume(self, why: str, *, pause: bool = True) -> None:
        """Count a resume after a drop, a short body or a drip, or give up."""
        attempts = self.attempts
        if attempts.resumes >= attempts.max_resumes:
            raise attempts.fail(why) from None
        attempts.resumes += 1
        self.writer.logger.info("Export download: %s; resuming at byte %d", why, self.writer.offset)
        if pause:
            attempts.pause(attempts.resumes)


def _corruption(writer: _Writer) -> str | None:
    """What is wrong with a file whose length is proven: its MD5, or its gzip stream.

    Both were computed as the bytes arrived (gzip decompressed chunk by chunk), so this
    costs nothing at the end.
    """
    expected = md5_of_etag(writer.etag)
    if expected is not None and writer.md5.hexdigest() != expected:
        return (
            f"its MD5 {writer.md5.hexdigest()} does not match the ETag {expected} of the "
            "file in storage"
        )
    declared_gzip = (writer.encoding or "").lower() in ("gzip", "x-gzip")
    return writer.check.problem(declared_gzip=declared_gzip)


def download_export(  # noqa: PLR0913
    url_provider: Callable[[], str],
    spool: Spool,
    *,
    timeout: float,
    user_agent: str,
    logger: logging.Logger,
    max_retries: int,
    backoff_base: float,
    backoff_cap: float,
    max_url_refreshes: int = 3,
    max_resumes: int = 5,
    task_id: int | None = None,
    deadline_seconds: float | None = None,
    progress_every: float = PROGRESS_EVERY_SECONDS,
) -> DownloadResult:
    """Download the export file into `spool`, with no credentials on the wire, proven whole.

    Args:
        url_provider: Returns a (fresh) pre-signed URL; called once, then again after a 403
            or a corrupt file.
        spool: Where the raw bytes go, as storage sent them (gzip is decoded when reading);
            finished when this returns, aborted with the error when it raises.
        timeout: Connect and read timeout of each request, in seconds; the floor on progress
            is measured over windows of twice this (at least 1 s).
        user_agent: User-Agent header.
        logger: Where progress is logged (never the URL's query string).
        max_retries: Retries of transient failures (5xx, 429, connection errors):
            the ``max_retries`` setting.
        backoff_base: First backoff delay in seconds (doubles, with jitter): the
            ``retry_initial_wait_seconds`` setting.
        backoff_cap: Longest backoff delay in seconds: the ``retry_max_wait_seconds`` setting.
        max_url_refreshes: Fresh URLs to ask for after 403 (expired or rejected signature).
        max_resumes: Resumes with Range after a dropped connection, a short body or a drip.
        task_id: The export task, named in errors.
        deadline_seconds: The longest the whole download may take (None: no deadline).
        progress_every: Seconds between progress lines.

    Returns:
        The size, duration and retry counters of the download.

    Raises:
        SpaazaDownloadError: When a limit is exhausted or storage answers an unexpected status.
        SpaazaCorruptExportError: When the file arrived corrupt twice.
    """
    attempts = _Attempts(
        max_url_refreshes, max_resumes, max_retries, backoff_base, backoff_cap, task_id
    )
    started = time.monotonic()
    window = max(FLOOR_WINDOW_TIMEOUTS * timeout, 1.0)
    pace = _Pace(
        window=window, deadline=deadline_seconds, progress_every=progress_every, started=started
    )
    writer = _Writer(spool, logger, pace)
    try:
        with redacting_queries(), storage_session(user_agent) as session:
            downloads = _download_whole(url_provider, _Download(session, timeout, attempts, writer))
    except BaseException as exc:
        spool.abort(exc)
        raise
    seconds = time.monotonic() - started
    result = DownloadResult(
        writer.offset,
        seconds,
        writer.encoding,
        attempts.resumes,
        attempts.url_refreshes,
        attempts.retries,
        md5_checked=md5_of_etag(writer.etag) is not None,
        downloads=downloads,
    )
    logger.info(
        "Downloaded export file: %d bytes in %.2f s (%.1f MB/s), %s",
        result.bytes,
        seconds,
        result.megabytes_per_second,
        "MD5 matches storage's ETag" if result.md5_checked else "storage stated no MD5",
        extra=log_fields(
            task_id,
            bytes=result.bytes,
            seconds=seconds,
            megabytes_per_second=result.megabytes_per_second,
        ),
    )
    spool.finish()  # only now, proven whole and checked, may a reader see the file's end
    return result


def _download_whole(url_provider: Callable[[], str], download: _Download) -> int:
    """Download until the file is proven whole; once more from a fresh URL if it is corrupt.

    The caller finishes the spool: a reader sees the file's end only once it is proven whole.

    Returns:
        How many whole downloads it took.
    """
    attempts, writer = download.attempts, download.writer
    for downloads in range(1, MAX_WHOLE_DOWNLOADS + 1):
        url = _fresh_url(url_provider, attempts, writer.logger, first=downloads == 1)
        while (outcome := download.request(url)) != "done":
            if outcome == "refresh":
                url = _fresh_url(url_provider, attempts, writer.logger, first=False)
        problem = _corruption(writer)
        if problem is None:
            return downloads
        if downloads < MAX_WHOLE_DOWNLOADS:
            writer.logger.warning(
                "Export task %s: the downloaded file is corrupt (%s); downloading it once more "
                "with a fresh URL",
                attempts.task_id,
                problem,
            )
            writer.restart()
    task = f"Export task {attempts.task_id}" if attempts.task_id is not None else "The export"
    msg = (
        f"{task}: the file is corrupt ({problem}), downloaded {MAX_WHOLE_DOWNLOADS} times "
        "with fresh URLs. The bookmark did not move; run the sync again later, and if it stays "
        "corrupt, report the task id to Spaaza"
    )
    raise SpaazaCorruptExportError(msg)


def _fresh_url(
    url_provider: Callable[[], str], attempts: _Attempts, logger: logging.Logger, *, first: bool
) -> str:
    """Ask for a download URL, refusing plain http to another host."""
    url = url_provider()
    if first:
        logger.info("Downloading export file from %s", redact_url(url))
    try:
        _refuse_plain_http(url)
    except _RefusedError as exc:
        raise attempts.fail(str(exc)) from None
    return url
