"""The ``api_url`` setting checked: a URL requests can send to, https (http only to loopback)."""

from __future__ import annotations

import re
from typing import NoReturn
from urllib.parse import urlsplit

import requests

from tap_spaaza_users.api.client import DEFAULT_API_URL
from tap_spaaza_users.download.storage import is_loopback
from tap_spaaza_users.errors import invalid_setting


def check_api_url(url: str) -> None:
    """Require an https URL (plain http only for loopback hosts, such as the sandbox).

    Args:
        url: The ``api_url`` setting.

    Raises:
        SpaazaConfigError: When the URL is unusable or not https.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [IPv6 address
        _malformed_url("host", _address(url))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        invalid_setting("api_url", f"must be a URL like {DEFAULT_API_URL}, not {url!r}")
    if parts.username or parts.password or parts.query:
        invalid_setting("api_url", "must not carry credentials or a query string")
    _check_address(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        invalid_setting(
            "api_url", f"must use https (plain http is only allowed for loopback hosts): {url!r}"
        )


def _check_address(url: str) -> None:
    """Refuse a host or port that requests cannot send to (or an unexpanded ``${VAR}``).

    requests itself judges the URL, so no URL it would refuse mid-sync gets past this.

    Raises:
        SpaazaConfigError: Naming the host and port as written (never the whole URL).
    """
    address = _address(url)
    try:
        urlsplit(url).port  # noqa: B018 - reading it checks it: a number from 0 to 65535
    except ValueError:
        _malformed_url("port", address)
    try:
        requests.PreparedRequest().prepare_url(url, None)
    except ValueError:  # requests' InvalidURL
        _malformed_url("host", address)
    if "$" in address:  # requests sends ``${HOST}`` percent-encoded, to a host that is not
        _malformed_url("host", address)


def _address(url: str) -> str:
    """A URL's host and port as written, without the credentials it may carry."""
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    return authority.rpartition("@")[2]


def _malformed_url(part: str, address: str) -> NoReturn:
    """Raise the error of an ``api_url`` whose host or port is not one."""
    kind = "number from 0 to 65535" if part == "port" else "host name"
    unexpanded = " (an environment variable left unexpanded?)" if "$" in address else ""
    invalid_setting(
        "api_url",
        f"is not a valid URL: the {part} in {address!r} is not a {kind}{unexpanded}; give a "
        f"URL like {DEFAULT_API_URL}, or http://127.0.0.1:<port> for a local sandbox",
    )
