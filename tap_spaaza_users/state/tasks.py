"""The export tasks the state names: the one in flight, the delivered ones, the given-up ones.

Which task serves a window is the ledger's decision (``tasks.ledger``); this is only where
it is written down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.state.keys import (
    DELIVERED_TASKS,
    GIVEN_UP_TASKS,
    IN_FLIGHT,
    IN_FLIGHT_VERSION,
    TASK_KEY,
    State,
)

if TYPE_CHECKING:
    import datetime as dt

#: How many delivered task ids the state keeps, for the last (open-ended) windows: the next
#: sync deletes the tasks of every window that ended at or before the bookmark from their
#: tags alone (``tasks.tags.tagged_window_end``), so no list of ids grows with a backfill.
DELIVERED_TASKS_KEPT = 20
#: How many given-up task ids the state keeps (each was deleted too).
GIVEN_UP_KEPT = 20


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
