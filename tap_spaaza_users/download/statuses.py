"""What storage's answer means for the file: a body, a retry, a fresh URL, or proven whole."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING

import requests

from tap_spaaza_users.api.retries import parse_retry_after
from tap_spaaza_users.errors import SpaazaFileUnobtainableError

if TYPE_CHECKING:
    from tap_spaaza_users.download.budget import Attempts
    from tap_spaaza_users.download.writer import Writer

_BODY_STATUSES = frozenset({200, 206, 416})
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


def retry_after(response: requests.Response) -> float | None:
    """The wait a response's Retry-After asks for, if any."""
    return parse_retry_after(response.headers.get("Retry-After"))


def expected_total(response: requests.Response, offset: int) -> int | None:
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


def handle_status(response: requests.Response, attempts: Attempts, writer: Writer) -> str:
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


def url_expired(response: requests.Response) -> bool:
    """Whether a 403 says the signed URL expired or its signature was rejected."""
    try:
        text = response.text[:4096].lower()
    except requests.RequestException:
        return False
    return "expired" in text or "signature" in text


def _range_outcome(response: requests.Response, writer: Writer) -> str:
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
