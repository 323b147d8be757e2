"""Retry waits of API calls and downloads: the server's Retry-After, else capped backoff."""

from __future__ import annotations

import email.utils
import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Generator


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: delta-seconds or an HTTP date.

    Args:
        value: The header value, if any.
        now: The current UNIX time (for tests); defaults to the clock.

    Returns:
        Seconds to wait (never negative), or None when absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def retry_waits(initial: float, cap: float) -> Generator[float, Any, None]:
    """Wait generator for ``backoff``: honour Retry-After, else capped expo with full jitter.

    ``backoff`` sends the failed attempt's exception into the generator, so a server's
    ``Retry-After`` (on a 429 or 5xx) decides the wait (capped); without one, a fault waits
    a random time between 0 and ``initial * 2**n`` (capped), which spreads retries of many
    clients apart.

    Args:
        initial: The first exponential step, in seconds.
        cap: The longest wait, in seconds.

    Yields:
        Seconds to wait before the next attempt.
    """
    exc = yield 0.0
    attempt = 0
    while True:
        wait = backoff_delay(attempt, initial, cap, getattr(exc, "retry_after", None))
        attempt += 1
        exc = yield wait


def backoff_delay(attempt: int, initial: float, cap: float, retry_after: float | None) -> float:
    """The wait before retry number ``attempt + 1`` (API calls and storage downloads alike).

    Args:
        attempt: Retries made so far (0 before the first).
        initial: The first exponential step, in seconds.
        cap: The longest wait, in seconds.
        retry_after: What the server asked for (``Retry-After``), if anything.

    Returns:
        The server's wish (capped), else a random time up to ``initial * 2**attempt`` (capped).
    """
    if retry_after is not None:
        return min(float(retry_after), cap)
    return random.uniform(0, min(cap, initial * 2**attempt))  # noqa: S311 - jitter, not crypto
