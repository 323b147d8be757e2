"""How the tap reads what the Services API says: JSON decoded in one guarded place, and failures.

Every answer's body goes through :func:`decode_json`, so HTML, a truncated body or bytes that
are not text become one clear line, never a traceback. A refused connection is told apart
from other connection faults: nothing listens at ``api_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tap_spaaza_users.download.storage import is_loopback

if TYPE_CHECKING:
    import requests

#: The longest excerpt of an error body quoted in a message.
_BODY_EXCERPT = 200


def decode_json(response: requests.Response) -> Any:  # noqa: ANN401 - any JSON value
    """The one way the tap reads an API answer: its JSON value, or None if it is not JSON.

    An HTML page (a proxy's, a login page's), a truncated or empty body, or bytes that are
    not text all give None; the caller names what it expected in one line.

    Args:
        response: The answer.

    Returns:
        The decoded JSON value, or None.
    """
    try:
        return response.json()
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return None


def content_kind(response: requests.Response) -> str:
    """What an answer that is not the expected JSON looks like, for a message."""
    text = response.text.lstrip()[:1]
    if not text:
        return "an empty body"
    if text == "<":
        return "an HTML page"
    return "a body that is not complete JSON"


def was_refused(error: BaseException) -> bool:
    """Whether a connection error is a refused connection (nothing listens at the port)."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError):
            return True
        pending += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    return "Connection refused" in str(error)


def nothing_listens(base_url: str) -> str:
    """The advice for a refused connection: nothing listens at api_url (a sandbox not started?)."""
    advice = f"nothing listens at api_url {base_url} (the connection was refused); check api_url"
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return advice + "."
    if is_loopback(host):
        start = f"spaaza-sandbox --port {port}" if port else "spaaza-sandbox"
        advice += f". It is a local address: is spaaza-sandbox running? Start it with `{start}`"
    return advice + "."


def describe_error_body(response: requests.Response) -> str:
    """Quote an error body's name and description for a message, tolerating every shape.

    Handles ``{"error": {"name", "description"}}`` (also inside the core-API envelope), an
    ``errors`` list, plain text, HTML and an empty body.

    Args:
        response: The error response.

    Returns:
        ``": name: description"`` style text, or an empty string when there is nothing to say.
    """
    body = decode_json(response)
    parts: list[str] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        candidates = [body.get("error")] + (errors if isinstance(errors, list) else [])
        parts = [_describe_error(item) for item in candidates if item]
    if parts:
        return ": " + "; ".join(part for part in parts if part)
    text = response.text.strip()
    if not text or text.lstrip().startswith("<"):
        return ""
    return ": " + " ".join(text.split())[:_BODY_EXCERPT]


def _describe_error(item: object) -> str:
    """One error entry as ``name: description``."""
    if isinstance(item, dict):
        name = item.get("name") or item.get("code")
        description = item.get("description") or item.get("message")
        return ": ".join(str(part) for part in (name, description) if part)
    return str(item)[:_BODY_EXCERPT]
