"""The users stream's state: every key it reads and writes, and the rules that move them.

The SDK keeps the bookmark (``replication_key_value``) and its not-yet-promoted progress
(``progress_markers``). Beside them the stream keeps:

- ``in_flight_task``: the export task a sync named for a window (its id and task key) and
  has not finished delivering, so a rerun reuses it instead of exporting again;
- ``delivered_before``: every user created before this moment has been delivered (the end
  of the last closed backfill window);
- ``full_refresh`` / ``last_full_refresh`` / ``last_full_refresh_users``: the periodic full
  refresh in progress (its table version, start and users emitted so far), when the last one
  was delivered whole, and how many users it held (a refresh with markedly fewer is refused);
- ``delivered_tasks``: the latest export tasks whose files were delivered, never adopted again
  and deleted by the next sync;
- ``chain_id`` / ``selection``: what the state belongs to (the chain, and a fingerprint of the
  saved segment or rules and join), checked before a sync sends any request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.errors import SpaazaStateError

State = dict[str, Any]

#: The SDK's keys for the bookmark, its replication key and its not-yet-promoted progress.
BOOKMARK = "replication_key_value"
REPLICATION_KEY = "replication_key"
PROGRESS_MARKERS = "progress_markers"
#: The SDK's note of the bookmark a sync started from.
STARTING_VALUE = "starting_replication_value"
#: The export task this sync created and has not finished delivering.
IN_FLIGHT = "in_flight_task"
#: The in-flight task's key: what it asks for (chain, window, request; see ``tasks``).
TASK_KEY = "key"
#: The in-flight task's note that it exports a full refresh (and of which version).
IN_FLIGHT_VERSION = "full_refresh_version"
#: Every user created before this moment has been delivered (end of a closed backfill window).
DELIVERED_BEFORE = "delivered_before"
#: When the last full export that was delivered whole was asked for (ISO 8601, UTC).
LAST_FULL_REFRESH = "last_full_refresh"
#: The full refresh in progress: its table version and start, until it is delivered whole.
FULL_REFRESH = "full_refresh"
#: How many users the last full refresh that was delivered whole (and activated) held.
LAST_FULL_REFRESH_USERS = "last_full_refresh_users"
#: The full refresh entry's count of users emitted so far (by this run and earlier ones).
REFRESH_USERS = "users"
#: The latest export tasks whose files were delivered (ids, oldest first).
DELIVERED_TASKS = "delivered_tasks"
#: How many delivered task ids the state keeps, for the last (open-ended) windows: the next
#: sync deletes the tasks of every window that ended at or before the bookmark from their
#: tags alone (``tasks.tags.tagged_window_end``), so no list of ids grows with a backfill.
DELIVERED_TASKS_KEPT = 20
#: The latest tasks given up because their file proved unobtainable (never adopted again).
GIVEN_UP_TASKS = "given_up_tasks"
GIVEN_UP_KEPT = 20
#: The chain the state belongs to.
CHAIN_ID = "chain_id"
#: A fingerprint of the users the state's bookmark is about (saved segment, rules and join).
SELECTION = "selection"
#: The keys a changed selection resets: the bookmark and everything that says how far it got.
_SELECTION_PROGRESS = (
    BOOKMARK,
    REPLICATION_KEY,
    PROGRESS_MARKERS,
    STARTING_VALUE,
    DELIVERED_BEFORE,
    FULL_REFRESH,
    LAST_FULL_REFRESH_USERS,
    DELIVERED_TASKS,
)


# The bookmark


def starting_bookmark(state: State, sdk_value: object) -> dt.datetime | None:
    """The bookmark a sync starts from.

    The SDK ignores a bookmark whose replication key is not named (a state written by hand);
    such a bookmark can only be ours, so it counts too.

    Args:
        state: The stream state.
        sdk_value: The SDK's starting replication key value (None when it has none).

    Returns:
        The bookmark, or None on a first sync.
    """
    bookmark = sdk_value
    own = state.get(BOOKMARK)
    if own and REPLICATION_KEY not in state:
        bookmark = max(parse_utc(str(own)), parse_utc(str(bookmark or own))).isoformat()
    return parse_utc(str(bookmark)) if bookmark else None


def note_progress(state: State, latest: str, replication_key: str) -> None:
    """Keep a file's greatest ``created_date`` as the progress marker, once the file is emitted.

    The stream does this once per file instead of letting the SDK compare every record;
    ``close_window`` then promotes the marker to the bookmark.

    Args:
        state: The stream state.
        latest: The greatest replication key value the file's emitted records carry.
        replication_key: The stream's replication key.
    """
    markers = state.setdefault(PROGRESS_MARKERS, {})
    current = markers.get(BOOKMARK)
    if current is None or _later(latest, current):
        markers[REPLICATION_KEY] = replication_key
        markers[BOOKMARK] = latest


def close_window(
    state: State,
    window_end: dt.datetime | None,
    replication_key: str,
    *,
    advance_watermark: bool = True,
) -> str | None:
    """Promote the window's progress marker to the bookmark and advance the watermark.

    The SDK promotes progress markers only when the whole stream is done; a windowed sync
    does it after each delivered window, so an interruption keeps the windows before it.
    The bookmark never moves back.

    Args:
        state: The stream state.
        window_end: The end of the window whose records were all emitted (None: open).
        replication_key: The stream's replication key.
        advance_watermark: False when a user of the window was dropped (an invalid row):
            the watermark then stays, so the next sync exports the window again.

    Returns:
        The bookmark after promotion, or None when there is none.
    """
    markers = state.pop(PROGRESS_MARKERS, None) or {}
    new_value = markers.get(BOOKMARK)
    old_value = state.get(BOOKMARK)
    if new_value is not None and (old_value is None or _later(new_value, old_value)):
        state[REPLICATION_KEY] = replication_key
        state[BOOKMARK] = new_value
    if state.get(BOOKMARK) is not None:
        state.setdefault(REPLICATION_KEY, replication_key)  # a state that lacked the key
    if window_end is not None and advance_watermark:
        state[DELIVERED_BEFORE] = window_end.astimezone(dt.timezone.utc).isoformat()
    value = state.get(BOOKMARK)
    return str(value) if value is not None else None


def delivered_up_to(state: State) -> dt.datetime | None:
    """Every user created before this moment was delivered, by the state as it came in.

    The later of the bookmark and the backfill watermark; while a full refresh is in
    progress, only its own watermark (its windows restart from ``start_date``).
    """
    moments = [delivered_before(state)]
    bookmark = state.get(BOOKMARK)
    if FULL_REFRESH not in state and isinstance(bookmark, str):
        with contextlib.suppress(ValueError):
            moments.append(parse_utc(bookmark))
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def delivered_before(state: State) -> dt.datetime | None:
    """The backfill watermark: the moment before which every user was delivered, or None."""
    value = state.get(DELIVERED_BEFORE)
    return parse_utc(value) if isinstance(value, str) else None


def _later(new_value: object, old_value: object) -> bool:
    """Whether a date-time value is after another (text compared as moments)."""
    try:
        return parse_utc(str(new_value)) > parse_utc(str(old_value))
    except ValueError:
        return str(new_value) > str(old_value)


# What the state belongs to


def selection_key(segment_id: int | None, rules: object, join: str) -> str:
    """A fingerprint of the users a sync asks for: saved segment, or rules and their join.

    Args:
        segment_id: The ``segment_id`` setting.
        rules: The ``segment_rules`` setting.
        join: The ``segment_join`` setting (it only matters with rules).

    Returns:
        A short hex digest.
    """
    chosen = {"segment_id": segment_id, "rules": rules, "join": join if rules else "all"}
    text = json.dumps(chosen, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim(state: State, chain_id: int, selection: str) -> bool:
    """Check that the state belongs to this chain and selection, then name them in it.

    A state without them (written before they were kept) is accepted as it is. A state of
    another selection is reset: its bookmark says nothing about the users now asked for.

    Args:
        state: The stream state (changed in place).
        chain_id: The ``chain_id`` setting.
        selection: The :func:`selection_key` of the settings.

    Returns:
        True when the selection changed and the state was reset.

    Raises:
        SpaazaStateError: When the state belongs to another chain.
    """
    recorded_chain = state.get(CHAIN_ID)
    if recorded_chain is not None and recorded_chain != chain_id:
        msg = (
            f"The state belongs to chain {recorded_chain}, but chain_id is {chain_id}: its "
            "bookmark says nothing about this chain's users. Clear it (`meltano state clear "
            f"<state id>`, or run without --state) to sync chain {chain_id} from start_date, "
            f"or set chain_id back to {recorded_chain}."
        )
        raise SpaazaStateError(msg)
    recorded_selection = state.get(SELECTION)
    changed = recorded_selection is not None and recorded_selection != selection
    if changed:
        for key in _SELECTION_PROGRESS:
            state.pop(key, None)
    state[CHAIN_ID] = chain_id
    state[SELECTION] = selection
    return changed


# The export task in flight (the ledger in tasks/ledger.py decides which task serves a window)


def record_task(
    state: State,
    task_id: int,
    key: str,
    now: dt.datetime,
    *,
    refresh_version: int | None = None,
) -> None:
    """Name the task a window is exported by, under its task key, as in flight.

    Args:
        state: The stream state.
        task_id: The task id.
        key: The task key (chain, window and request; see ``tasks.tags.task_key``).
        now: When it was named.
        refresh_version: The full refresh it exports, if any.
    """
    entry: dict[str, Any] = {"id": task_id, TASK_KEY: key, "created_at": now.isoformat()}
    if refresh_version is not None:
        entry[IN_FLIGHT_VERSION] = refresh_version
    state[IN_FLIGHT] = entry


def in_flight(state: State) -> tuple[int, str | None] | None:
    """The task the state names in flight and its task key (None: it serves no window).

    Args:
        state: The stream state.

    Returns:
        The task id and key, or None when no task is in flight.
    """
    entry = _entry(state)
    if entry is None:
        return None
    key = entry.get(TASK_KEY)
    return int(entry["id"]), key if isinstance(key, str) else None


def in_flight_since(state: State) -> dt.datetime | None:
    """When this tap named the in-flight task (created or adopted it), on its own clock."""
    entry = _entry(state)
    try:
        return parse_utc(str(entry["created_at"])) if entry and entry.get("created_at") else None
    except ValueError:
        return None


def note_given_up(state: State, task_id: int) -> None:
    """Remember a task whose file proved unobtainable, so it is never adopted again.

    Only the latest few are kept: the task is deleted too, and is named here only in case
    that deletion failed.

    Args:
        state: The stream state.
        task_id: The task given up.
    """
    kept = [i for i in given_up_tasks(state) if i != task_id]
    state[GIVEN_UP_TASKS] = [*kept, task_id][-GIVEN_UP_KEPT:]


def given_up_tasks(state: State) -> list[int]:
    """The latest tasks given up because their file proved unobtainable, oldest first."""
    value = state.get(GIVEN_UP_TASKS)
    if not isinstance(value, list):
        return []
    return [i for i in value if isinstance(i, int) and not isinstance(i, bool)]


def recorded_tasks(state: State) -> set[int]:
    """The task the state names as in flight, if any (as a set)."""
    entry = _entry(state)
    return {int(entry["id"])} if entry is not None else set()


def note_delivered(state: State, task_id: int) -> None:
    """Remember that a task's file was delivered, so it is never adopted again.

    Args:
        state: The stream state.
        task_id: The task whose file was delivered.
    """
    kept = [i for i in delivered_tasks(state) if i != task_id]
    state[DELIVERED_TASKS] = [*kept, task_id][-DELIVERED_TASKS_KEPT:]


def delivered_tasks(state: State) -> list[int]:
    """The latest tasks whose files were delivered, oldest first."""
    value = state.get(DELIVERED_TASKS)
    if not isinstance(value, list):
        return []
    return [i for i in value if isinstance(i, int) and not isinstance(i, bool)]


def forget_task(state: State) -> None:
    """Drop the in-flight task from the state."""
    state.pop(IN_FLIGHT, None)


def _entry(state: State) -> dict[str, Any] | None:
    """The in-flight task record, if the state holds a well-formed one."""
    entry = state.get(IN_FLIGHT)
    if isinstance(entry, dict) and isinstance(entry.get("id"), int):
        return entry
    return None


# Periodic full refresh


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


def is_int(value: object) -> bool:
    """Whether a JSON value is an integer (booleans are not)."""
    return isinstance(value, int) and not isinstance(value, bool)
