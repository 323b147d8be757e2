"""The stream state's own keys: the in-flight export task, backfill progress, bookmark promotion."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from tap_spaaza_users.windows import Window

#: The export task this sync created and has not finished delivering.
IN_FLIGHT = "in_flight_task"
#: Every user created before this moment has been delivered (end of a closed backfill window).
DELIVERED_BEFORE = "delivered_before"
#: The SDK's keys for the bookmark and its not-yet-promoted progress.
PROGRESS_MARKERS = "progress_markers"
BOOKMARK = "replication_key_value"
#: The in-flight task's fingerprint of what it asks for (segment, rules, export target).
REQUEST = "request"


def request_key(body: dict[str, Any]) -> str:
    """A fingerprint of what an export task body asks for, whenever and by whom it is sent.

    The trigger's ``once`` and the free-text ``desc`` are left out; the segment (saved or
    inline, with its join) and the target are in. A task left by a run with other segment
    settings then exports other users, so it must not be reused.

    Args:
        body: A ``POST /tasks`` body.

    Returns:
        A short hex digest.
    """
    trigger = {name: value for name, value in body.get("trigger", {}).items() if name != "once"}
    text = json.dumps({"target": body.get("target"), "trigger": trigger}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_task(
    state: dict[str, Any],
    task_id: int,
    window: Window,
    now: dt.datetime,
    request: str | None = None,
) -> None:
    """Note a task just created for a window.

    Args:
        state: The stream state.
        task_id: The task id.
        window: The window it exports.
        now: The creation time.
        request: The task body's fingerprint (:func:`request_key`).
    """
    entry: dict[str, Any] = {"id": task_id, **window.key(), "created_at": now.isoformat()}
    if request is not None:
        entry[REQUEST] = request
    state[IN_FLIGHT] = entry


def task_for(state: dict[str, Any], window: Window, request: str | None = None) -> int | None:
    """The recorded task exporting exactly this window and request, not yet delivered.

    A task recorded without a fingerprint (by an earlier version) matches on the window.

    Args:
        state: The stream state.
        window: The window this run is about to export.
        request: The fingerprint of the task body this run would send.

    Returns:
        The task id, or None.
    """
    entry = _entry(state)
    if entry is None or entry.get("delivered"):
        return None
    recorded = entry.get(REQUEST)
    if request is not None and recorded is not None and recorded != request:
        return None
    key = window.key()
    if all(entry.get(name) == value for name, value in key.items()):
        return int(entry["id"])
    return None


def other_task(state: dict[str, Any], window: Window, request: str | None = None) -> int | None:
    """A recorded task that this window will not use (another window or request, or delivered).

    Args:
        state: The stream state.
        window: The window this run is about to export.
        request: The fingerprint of the task body this run would send.

    Returns:
        The task id, or None.
    """
    entry = _entry(state)
    if entry is None or task_for(state, window, request) is not None:
        return None
    return int(entry["id"])


def mark_delivered(state: dict[str, Any]) -> None:
    """Flag the in-flight task's file as delivered (only its clean-up is left)."""
    entry = state.get(IN_FLIGHT)
    if isinstance(entry, dict):
        entry["delivered"] = True


def forget_task(state: dict[str, Any]) -> None:
    """Drop the in-flight task from the state."""
    state.pop(IN_FLIGHT, None)


def delivered_before(state: dict[str, Any]) -> dt.datetime | None:
    """The backfill watermark, if any.

    Args:
        state: The stream state.

    Returns:
        The moment before which every user was delivered, or None.
    """
    value = state.get(DELIVERED_BEFORE)
    return parse_utc(value) if isinstance(value, str) else None


def note_progress(state: dict[str, Any], latest: str, replication_key: str) -> None:
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
        markers["replication_key"] = replication_key
        markers[BOOKMARK] = latest


def close_window(state: dict[str, Any], window: Window, replication_key: str) -> str | None:
    """Promote the window's progress marker to the bookmark and advance the watermark.

    The SDK promotes progress markers only when the whole stream is done; a windowed sync
    does it after each delivered window, so an interruption keeps the windows before it.
    The bookmark never moves back.

    Args:
        state: The stream state.
        window: The window whose records were all emitted.
        replication_key: The stream's replication key.

    Returns:
        The bookmark after promotion, or None when there is none.
    """
    markers = state.pop(PROGRESS_MARKERS, None) or {}
    new_value = markers.get(BOOKMARK)
    old_value = state.get(BOOKMARK)
    if new_value is not None and (old_value is None or _later(new_value, old_value)):
        state["replication_key"] = replication_key
        state[BOOKMARK] = new_value
    if state.get(BOOKMARK) is not None:
        state.setdefault("replication_key", replication_key)  # a state that lacked the key
    if window.end is not None:
        state[DELIVERED_BEFORE] = window.end.astimezone(dt.timezone.utc).isoformat()
    value = state.get(BOOKMARK)
    return str(value) if value is not None else None


def _later(new_value: object, old_value: object) -> bool:
    """Whether a date-time value is after another (text compared as moments)."""
    try:
        return parse_utc(str(new_value)) > parse_utc(str(old_value))
    except ValueError:
        return str(new_value) > str(old_value)


def _entry(state: dict[str, Any]) -> dict[str, Any] | None:
    """The in-flight task record, if the state holds a well-formed one."""
    entry = state.get(IN_FLIGHT)
    if isinstance(entry, dict) and isinstance(entry.get("id"), int):
        return entry
    return None
