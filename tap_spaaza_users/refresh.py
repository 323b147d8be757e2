"""Periodic full refresh: when one is due, the one in progress, and its Singer table version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users import inflight
from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from tap_spaaza_users.streams import UsersStream

#: When the last full export that was delivered whole was asked for (ISO 8601, UTC).
LAST_FULL_REFRESH = "last_full_refresh"
#: The full refresh in progress: its table version and start, until it is delivered whole.
FULL_REFRESH = "full_refresh"
#: The in-flight task's note that it exports a full refresh (and of which version).
IN_FLIGHT_VERSION = "full_refresh_version"


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


def is_due(state: dict[str, Any], days: int | None, now: dt.datetime) -> bool:
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


def begin(state: dict[str, Any], days: int | None, now: dt.datetime) -> FullRefresh | None:
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
    first = state.get(inflight.BOOKMARK) is None and LAST_FULL_REFRESH not in state
    refresh = FullRefresh(version=int(now.timestamp() * 1000), started_at=now, first=first)
    state[FULL_REFRESH] = {"version": refresh.version, "started_at": now.isoformat()}
    state.pop(inflight.DELIVERED_BEFORE, None)
    return refresh


def note_in_flight(state: dict[str, Any], refresh: FullRefresh | None) -> None:
    """Mark the in-flight task as exporting this full refresh (no-op for an incremental sync).

    Args:
        state: The stream state.
        refresh: The sync's full refresh, if any.
    """
    entry = state.get(inflight.IN_FLIGHT)
    if refresh is not None and isinstance(entry, dict):
        entry[IN_FLIGHT_VERSION] = refresh.version


def finish(state: dict[str, Any], refresh: FullRefresh) -> None:
    """Record a full refresh delivered whole: ``last_full_refresh`` becomes its start.

    Args:
        state: The stream state.
        refresh: The full refresh just delivered.
    """
    state.pop(FULL_REFRESH, None)
    state[LAST_FULL_REFRESH] = refresh.started_at.astimezone(dt.timezone.utc).isoformat()


def start(stream: UsersStream) -> FullRefresh | None:
    """Begin (or resume) the sync's full refresh if one is due, and say so in the log.

    Its RECORD messages carry the refresh's version. The first full export of a stream
    also opens with ACTIVATE_VERSION, so a target creates the table even without users;
    a later refresh does not, because a target that honours it would drop (or mark
    deleted) every row it holds while the refresh is still being exported. BATCH files
    carry no version, so in BATCH mode every user is re-exported but no ACTIVATE_VERSION
    is sent and deletions are not propagated.

    Args:
        stream: The users stream.

    Returns:
        The full refresh, or None for an incremental sync.
    """
    days = stream.config.get("full_refresh_days")
    now = dt.datetime.now(dt.timezone.utc)
    state = stream.stream_state
    last = state.get(LAST_FULL_REFRESH)
    refresh = begin(state, int(days) if days else None, now)
    stream._stream_version = None  # noqa: SLF001 - the SDK's field for RECORD versions
    if refresh is None:
        return None
    stream.logger.info(
        "%s full refresh (version %d; full_refresh_days %s, last full refresh %s): every "
        "user is exported, not only the increment",
        "Resuming the" if refresh.resumed else "Starting a",
        refresh.version,
        days,
        last or "never",
    )
    if stream.get_batch_config(stream.config):
        stream.logger.warning(
            "BATCH mode: the full refresh re-exports every user, but batch files carry no "
            "table version, so no ACTIVATE_VERSION is sent and deleted users stay in the target"
        )
        return refresh
    stream._stream_version = refresh.version  # noqa: SLF001
    if refresh.first:
        stream._write_activate_version_message(refresh.version)  # noqa: SLF001
    return refresh


def complete(stream: UsersStream, refresh: FullRefresh | None) -> None:
    """After the last record of a full refresh: ACTIVATE_VERSION, then ``last_full_refresh``.

    Args:
        stream: The users stream.
        refresh: The sync's full refresh (None: nothing to do).
    """
    if refresh is None:
        return
    if stream._stream_version == refresh.version:  # noqa: SLF001
        stream._write_activate_version_message(refresh.version)  # noqa: SLF001
        stream.logger.info(
            "ACTIVATE_VERSION %d sent: targets that honour it remove users not re-exported",
            refresh.version,
        )
    finish(stream.stream_state, refresh)
    stream.logger.info(
        "Full refresh delivered whole; last_full_refresh is %s",
        stream.stream_state[LAST_FULL_REFRESH],
    )
    stream.flush_state()
