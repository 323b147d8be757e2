"""The periodic full refresh's bookkeeping: when one is due, its count of users, its end.

The SDK messages around a full refresh (its version, ACTIVATE_VERSION) are ``full_refresh``'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.state.keys import (
    BOOKMARK,
    DELIVERED_BEFORE,
    FULL_REFRESH,
    LAST_FULL_REFRESH,
    LAST_FULL_REFRESH_USERS,
    REFRESH_USERS,
    State,
    is_int,
)


@dataclass(frozen=True)
class FullRefresh:
    """A full export of every user (within segment and ``start_date``) replacing the increment.

    Attributes:
        version: The Singer table version its RECORD and ACTIVATE_VERSION messages carry
            (milliseconds since the epoch at its start).
        started_at: When it began; becomes ``last_full_refresh`` once delivered whole.
        resumed: Whether it continues one an earlier run left unfinished.
        first: Whether the stream had no bookmark and no full refresh before, so the target
            cannot hold rows of it yet.
    """

    version: int
    started_at: dt.datetime
    resumed: bool = False
    first: bool = False


def is_due(state: State, days: int | None, now: dt.datetime) -> bool:
    """Whether the last full refresh is ``days`` days old or more (or never happened).

    Args:
        state: The stream state.
        days: The ``full_refresh_days`` setting (None or 0: never).
        now: The current time.

    Returns:
        True when a full refresh is due.
    """
    if not days:
        return False
    last = state.get(LAST_FULL_REFRESH)
    if not isinstance(last, str):
        return True
    try:
        return now - parse_utc(last) >= dt.timedelta(days=days)
    except ValueError:
        return True


def begin_full_refresh(state: State, days: int | None, now: dt.datetime) -> FullRefresh | None:
    """The full refresh this sync runs: the one an earlier run left, or a new one when due.

    A new one is noted in the state at once and forgets the backfill watermark
    (``delivered_before``), which from then on tracks the refresh's own windows, so an
    interrupted refresh resumes with the same version where it stopped. With the setting
    off, a refresh left unfinished is dropped.

    Args:
        state: The stream state (changed in place).
        days: The ``full_refresh_days`` setting.
        now: The current time.

    Returns:
        The full refresh, or None for an incremental sync.
    """
    entry = state.get(FULL_REFRESH)
    if not days:
        state.pop(FULL_REFRESH, None)
        return None
    if isinstance(entry, dict) and isinstance(entry.get("version"), int):
        try:
            started = parse_utc(str(entry.get("started_at")))
        except ValueError:
            started = now
        return FullRefresh(version=entry["version"], started_at=started, resumed=True)
    if not is_due(state, days, now):
        return None
    first = state.get(BOOKMARK) is None and LAST_FULL_REFRESH not in state
    refresh = FullRefresh(version=int(now.timestamp() * 1000), started_at=now, first=first)
    state[FULL_REFRESH] = {"version": refresh.version, "started_at": now.isoformat()}
    state.pop(DELIVERED_BEFORE, None)
    return refresh


def note_refresh_users(state: State, emitted: int) -> None:
    """Add a delivered window's users to the count of the full refresh in progress.

    Args:
        state: The stream state.
        emitted: The users the window emitted.
    """
    entry = state.get(FULL_REFRESH)
    if isinstance(entry, dict):
        entry[REFRESH_USERS] = refresh_users(state) + emitted


def refresh_users(state: State) -> int:
    """How many users the full refresh in progress has emitted so far (all its runs)."""
    entry = state.get(FULL_REFRESH)
    count = entry.get(REFRESH_USERS) if isinstance(entry, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def refusal(state: State, min_ratio: float) -> str | None:
    """Why the full refresh just exported must not send ACTIVATE_VERSION, or None.

    ACTIVATE_VERSION removes every user the refresh did not hold, so it is sent only for a
    plausibly complete file: never an empty one (an empty export is no proof that the users
    are gone), nor one holding fewer than ``min_ratio`` times the users of the last full
    refresh delivered. The first full refresh has no yardstick: it is never refused (an
    empty one is still not activated, see the stream).

    Args:
        state: The stream state (its refresh in progress and last delivered count).
        min_ratio: The ``full_refresh_min_ratio`` setting.

    Returns:
        The reason, for the log, or None when the refresh may be activated.
    """
    users = refresh_users(state)
    last = state.get(LAST_FULL_REFRESH_USERS)
    if not is_int(last) or not last:
        return None  # no full refresh delivered yet: nothing in the target to protect
    if users == 0:
        return f"it holds no user at all, where the last full refresh held {last}"
    if users < min_ratio * last:
        return (
            f"it holds {users} users, fewer than full_refresh_min_ratio {min_ratio:g} of the "
            f"{last} the last full refresh held"
        )
    return None


def refuse_full_refresh(state: State) -> None:
    """Drop a refused full refresh: ``last_full_refresh`` stays, so the next sync runs one anew.

    Args:
        state: The stream state.
    """
    state.pop(FULL_REFRESH, None)


def finish_full_refresh(state: State, refresh: FullRefresh) -> str:
    """Record a full refresh delivered whole: ``last_full_refresh`` becomes its start.

    Its count of users becomes ``last_full_refresh_users``, the yardstick of the next one.

    Args:
        state: The stream state.
        refresh: The full refresh just delivered.

    Returns:
        The new ``last_full_refresh``.
    """
    users = refresh_users(state)
    if users:  # an empty one (BATCH mode sends no ACTIVATE_VERSION) is no yardstick
        state[LAST_FULL_REFRESH_USERS] = users
    state.pop(FULL_REFRESH, None)
    last = refresh.started_at.astimezone(dt.timezone.utc).isoformat()
    state[LAST_FULL_REFRESH] = last
    return last
