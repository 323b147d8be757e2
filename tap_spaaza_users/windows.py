"""Export windows: where a sync starts, and how a long history splits into backfill windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc, utc_text

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Window:
    """Users created in ``[start, end)``; ``start`` None means all history, ``end`` None up to now.

    Windows are half-open, so a user created exactly at a seam belongs to the later window
    only. The export rule asks the server for a little more on each side (its rules are
    strict or inclusive, and whole seconds); the stream keeps exactly ``[start, end)``.
    """

    start: dt.datetime | None
    end: dt.datetime | None = None

    def contains(self, created: dt.datetime) -> bool:
        """Whether a user created at ``created`` belongs to this window.

        Args:
            created: The user's ``created_date`` in UTC.

        Returns:
            True when ``start <= created < end`` (missing bounds are open).
        """
        if self.start is not None and created < self.start:
            return False
        return self.end is None or created < self.end

    def key(self) -> dict[str, str | None]:
        """The window as kept in the state, to recognise it on the next run."""
        return {"window_start": utc_text(self.start), "window_end": utc_text(self.end)}

    def describe(self) -> str:
        """The window for log lines."""
        start = utc_text(self.start) or "the beginning"
        return f"{start} to {utc_text(self.end) or 'now'}"


def sync_start(
    *,
    start_date: dt.datetime | None,
    bookmark: dt.datetime | None,
    lookback: dt.timedelta,
    delivered_before: dt.datetime | None = None,
) -> dt.datetime | None:
    """The earliest ``created_date`` a sync asks for.

    The bookmark minus the lookback (the export index lags), but never before ``start_date``
    and never before ``delivered_before``: a backfill window is only closed when its end
    was older than the lookback when it was exported, so everything before that end has
    been delivered. None means all users.

    Args:
        start_date: The ``start_date`` setting.
        bookmark: The greatest ``created_date`` delivered so far.
        lookback: The ``lookback_minutes`` setting.
        delivered_before: The end of the last backfill window delivered, if any.

    Returns:
        The start, or None for all history.
    """
    candidates = [
        moment
        for moment in (start_date, bookmark - lookback if bookmark else None, delivered_before)
        if moment is not None
    ]
    return max(candidates) if candidates else None


def plan_sync(
    config: Mapping[str, Any],
    *,
    bookmark: dt.datetime | None,
    delivered_before: dt.datetime | None,
    now: dt.datetime,
) -> list[Window]:
    """A sync's export windows, from the settings and where the last sync got to.

    The settings are ``start_date``, ``lookback_minutes`` and ``backfill_window_days``.

    Args:
        config: The tap's settings.
        bookmark: The greatest ``created_date`` delivered (None on a first sync or a full
            refresh).
        delivered_before: The backfill watermark from the state, if any.
        now: The current time.

    Returns:
        The windows, oldest first: one, or ``backfill_window_days`` windows.
    """
    start_date = config.get("start_date")
    lookback = dt.timedelta(minutes=float(config.get("lookback_minutes", 60)))
    days = config.get("backfill_window_days")
    start = sync_start(
        start_date=parse_utc(str(start_date)) if start_date else None,
        bookmark=bookmark,
        lookback=lookback,
        delivered_before=delivered_before,
    )
    return plan_windows(start, now=now, lookback=lookback, days=int(days) if days else None)


def plan_windows(
    start: dt.datetime | None,
    *,
    now: dt.datetime,
    lookback: dt.timedelta,
    days: int | None,
) -> list[Window]:
    """Split ``[start, now)`` into windows of ``days`` days, the last one open-ended.

    A window is closed only when its end is older than ``now - lookback``: users created
    before such an end are all indexed, so the end can become ``delivered_before``. The
    grid starts at ``start``, so a resumed backfill (which starts at ``delivered_before``,
    a grid point) meets the same windows again and can reuse the task it left running.

    Args:
        start: The sync start (None: all history, one window).
        now: The current time.
        lookback: The ``lookback_minutes`` setting.
        days: The ``backfill_window_days`` setting (None or 0: one window).

    Returns:
        The windows, oldest first.
    """
    if start is None or not days:
        return [Window(start)]
    step = dt.timedelta(days=days)
    horizon = now - lookback
    windows = []
    low = start
    while low + step <= horizon:
        windows.append(Window(low, low + step))
        low += step
    windows.append(Window(low))
    return windows
