"""The sandbox's clock: real time that tests can set and advance."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


class SandboxClock:
    """A UTC clock that ticks in real time from a settable origin."""

    def __init__(self, now: datetime | None = None) -> None:
        """Start at ``now`` (tz-aware; naive means UTC) or at the real UTC time."""
        self._lock = threading.Lock()
        self._origin = _as_utc(now) if now is not None else datetime.now(timezone.utc)
        self._mono = time.monotonic()

    def now(self) -> datetime:
        """Return the sandbox's current time (tz-aware UTC)."""
        with self._lock:
            return self._origin + timedelta(seconds=time.monotonic() - self._mono)

    def set(self, when: datetime) -> None:
        """Jump to ``when``; the clock keeps ticking from there."""
        with self._lock:
            self._origin = _as_utc(when)
            self._mono = time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative) by ``seconds``."""
        with self._lock:
            self._origin += timedelta(seconds=seconds)


def _as_utc(when: datetime) -> datetime:
    """Return ``when`` as tz-aware UTC; a naive value is taken as UTC."""
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def format_datetime(when: datetime) -> str:
    """Format ``when`` the way the users CSV does: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return _as_utc(when).strftime("%Y-%m-%d %H:%M:%S")


def iso_z(when: datetime | None) -> str | None:
    """Format ``when`` as ISO 8601 UTC with a ``Z`` (``None`` stays ``None``)."""
    if when is None:
        return None
    return _as_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")
