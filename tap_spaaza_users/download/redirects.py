"""Open a storage URL at the file's offset, following only https redirects, forwarding nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urljoin, urlsplit

import requests

from tap_spaaza_users.download.storage import is_loopback, redact_url

if TYPE_CHECKING:
    from tap_spaaza_users.download.writer import Writer

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def refuse_plain_http(url: str) -> None:
    """Refuse a URL (or a redirect) that is not one, or on plain http to another host."""
    parts = _valid_url(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        msg = (
            f"the download URL is plain http to {parts.hostname} ({redact_url(url)}), so "
            "every user's personal data would cross the network unencrypted; refusing it "
            "(ask Spaaza for https download URLs)"
        )
        raise RefusedError(msg)


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
        raise RefusedError(msg) from None
    return parts


def open_at_offset(
    session: requests.Session, url: str, writer: Writer, timeout: float
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
            raise RefusedError(msg)
    msg = f"storage redirected more than {MAX_REDIRECTS} times"
    raise RefusedError(msg)


class RefusedError(Exception):
    """Storage sent the download where it must not go (plain http, too many redirects)."""
