"""The storage host: a session that carries no credentials, and URLs without their signature."""

from __future__ import annotations

import contextlib
import http.cookiejar
import ipaddress
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator


def redact_url(url: str) -> str:
    """Return scheme://host/path of a URL: the signed query string never leaves this module.

    Args:
        url: A storage URL, possibly pre-signed.

    Returns:
        The URL without query, fragment or user info.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a broken [IPv6 literal, a port that is not one: say only that
        return "<a URL that is not valid>"
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}"


class _QueryRedactor(logging.Filter):
    """Masks query strings in urllib3's DEBUG lines (which print the request path and query).

    Active while a download runs: whatever encoding the query went out in, no `?...` survives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.active = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.active:
            message = record.getMessage()
            if "?" in message:
                record.msg, record.args = _QUERY.sub("?<redacted>", message), ()
        return True

    @contextlib.contextmanager
    def during_download(self) -> Iterator[None]:
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


_QUERY = re.compile(r"\?[^\s\"']*")
_REDACTOR = _QueryRedactor()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACTOR)


class _StripAuthorization(requests.auth.AuthBase):
    """An auth hook that guarantees no Authorization header (and blocks .netrc lookups)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        r.headers.pop("Cookie", None)
        return r


def storage_session(user_agent: str) -> requests.Session:
    """Build a session for storage that carries no credentials and keeps no cookies.

    Args:
        user_agent: The User-Agent header to send.

    Returns:
        A fresh `requests.Session`, unrelated to the API session.
    """
    session = requests.Session()
    session.auth = _StripAuthorization()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers.clear()
    # identity: keep the body byte-for-byte as stored, so Range offsets stay valid.
    session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "identity"})
    return session


def is_loopback(host: str) -> bool:
    """Whether a host is this machine: the name ``localhost`` or a loopback IP address.

    Loopback addresses are 127.0.0.0/8 and ::1. Plain http is allowed only to such hosts
    (the sandbox), for the API and for storage alike. Names under ``.localhost`` are not
    counted: whether they resolve to this machine depends on the resolver.

    Args:
        host: A host name or IP address, as ``urlsplit(url).hostname`` gives it.

    Returns:
        True for a loopback host.
    """
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redacting_queries() -> contextlib.AbstractContextManager[None]:
    """While active, urllib3's DEBUG lines show no query string (the URL's signature).

    Returns:
        A context manager.
    """
    return _REDACTOR.during_download()
