"""Download the export file from storage: no credentials, resumable, proven whole.

A download is complete only when its length is proven (``Content-Length``, the total of a
``Content-Range``, or a ``Range`` request from the end answering 416), its MD5 matches the
ETag when storage states one, and a gzip file decompresses whole. A drip is cut off by a
floor on progress, and the whole download by a deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
import urllib3.exceptions

from tap_spaaza_users.download.budget import Attempts
from tap_spaaza_users.download.integrity import md5_of_etag
from tap_spaaza_users.download.redirects import RefusedError, open_at_offset, refuse_plain_http
from tap_spaaza_users.download.statuses import (
    expected_total,
    handle_status,
    retry_after,
    url_expired,
)
from tap_spaaza_users.download.storage import redact_url, redacting_queries, storage_session
from tap_spaaza_users.download.writer import Pace, PastDeadlineError, TooSlowError, Writer
from tap_spaaza_users.errors import SpaazaCorruptExportError, SpaazaDownloadError
from tap_spaaza_users.logs.fields import log_fields

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from tap_spaaza_users.download.spool import Spool

PROGRESS_EVERY_SECONDS = 10.0
#: The floor's window, in request timeouts (``request_timeout_seconds``), and at least 1 s.
FLOOR_WINDOW_TIMEOUTS = 2
#: Downloads of a file that arrives corrupt (a bad MD5 or gzip) before giving up.
MAX_WHOLE_DOWNLOADS = 2
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


class _Download:
    """One download in progress: the session, the counters and the spool being written."""

    def __init__(
        self, session: requests.Session, timeout: float, attempts: Attempts, writer: Writer
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
            response = open_at_offset(self.session, url, self.writer, self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.retry(f"connection failed ({type(exc).__name__})", None)
            return "again"
        except requests.RequestException as exc:  # e.g. a malformed URL: not worth retrying
            why = f"request failed ({type(exc).__name__})"
            raise self.attempts.fail(why) from None
        except RefusedError as exc:
            raise self.attempts.fail(str(exc)) from None
        with response:
            action = handle_status(response, self.attempts, self.writer)
            if action == "refresh":
                ranged = "Range" in response.request.headers
                return self.refused(ranged=ranged and not url_expired(response))
            if action == "retry":
                why = f"storage answered HTTP {response.status_code}"
                self.retry(why, retry_after(response))
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
        total = expected_total(response, writer.offset)
        writer.total = total
        writer.spool.announce(total)
        try:
            writer.drain(response)
        except _BODY_ERRORS as exc:
            self.resume(f"connection dropped ({type(exc).__name__})")
            return "again"
        except TooSlowError as exc:
            self.resume(str(exc))
            return "again"
        except PastDeadlineError:
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


def _corruption(writer: Writer) -> str | None:
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
    attempts = Attempts(
        max_url_refreshes, max_resumes, max_retries, backoff_base, backoff_cap, task_id
    )
    started = time.monotonic()
    window = max(FLOOR_WINDOW_TIMEOUTS * timeout, 1.0)
    pace = Pace(
        window=window, deadline=deadline_seconds, progress_every=progress_every, started=started
    )
    writer = Writer(spool, logger, pace)
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
    url_provider: Callable[[], str], attempts: Attempts, logger: logging.Logger, *, first: bool
) -> str:
    """Ask for a download URL, refusing plain http to another host."""
    url = url_provider()
    if first:
        logger.info("Downloading export file from %s", redact_url(url))
    try:
        refuse_plain_http(url)
    except RefusedError as exc:
        raise attempts.fail(str(exc)) from None
    return url
