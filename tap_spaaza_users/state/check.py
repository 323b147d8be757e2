"""Check an input state before a sync sends any request: one-line errors naming the key."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NoReturn

from tap_spaaza_users.contract import CLOCK_SKEW, parse_utc
from tap_spaaza_users.errors import SpaazaStateError
from tap_spaaza_users.state.keys import (
    BOOKMARK,
    DELIVERED_BEFORE,
    FULL_REFRESH,
    IN_FLIGHT,
    IN_FLIGHT_VERSION,
    LAST_FULL_REFRESH,
    LAST_FULL_REFRESH_USERS,
    PROGRESS_MARKERS,
    REPLICATION_KEY,
    TASK_KEY,
    State,
    is_int,
)

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable


#: The stream whose state the tap keeps.
STREAM = "users"

#: The in-flight task's keys and the JSON kinds each may take (others are left alone).
_IN_FLIGHT_KINDS: dict[str, Callable[[object], bool]] = {
    TASK_KEY: lambda value: isinstance(value, str),
    "created_at": lambda value: isinstance(value, str),
    IN_FLIGHT_VERSION: is_int,
}


def check_state(tap_state: object, *, now: dt.datetime) -> None:
    """Check an input state before the SDK takes it in: shapes, date-times, no future bookmark.

    Only what the tap reads is checked; keys it does not know are left alone, so a
    state written by a later version still loads.

    Args:
        tap_state: The whole state (``{"bookmarks": {"users": {...}}}``).
        now: The current time.

    Raises:
        SpaazaStateError: Naming the key, what is wrong and what to do.
    """
    if not isinstance(tap_state, dict):
        _invalid_state("", f"must be a JSON object, not {_kind(tap_state)}")
    bookmarks = tap_state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        _invalid_state("bookmarks", f"must be an object of streams, not {_kind(bookmarks)}")
    for name, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            _invalid_state(f"bookmarks.{name}", f"must be an object, not {_kind(stream_state)}")
    stream_state = bookmarks.get(STREAM)
    if stream_state is not None:
        _check_stream_state(stream_state, f"bookmarks.{STREAM}", now)


def _check_stream_state(stream_state: State, where: str, now: dt.datetime) -> None:
    """Check the users stream's own state."""
    bookmark = stream_state.get(BOOKMARK)
    if bookmark is not None:
        moment = _moment(bookmark, f"{where}.{BOOKMARK}")
        if moment > now + CLOCK_SKEW:
            _invalid_state(
                f"{where}.{BOOKMARK}",
                f"is in the future ({bookmark}): a sync from it would find no user. Set it to "
                "the last created_date delivered, or remove it to start from start_date",
            )
    if not isinstance(stream_state.get(REPLICATION_KEY, ""), str):
        _invalid_state(f"{where}.{REPLICATION_KEY}", "must be the name of a column")
    markers = stream_state.get(PROGRESS_MARKERS, {})
    if not isinstance(markers, dict):
        _invalid_state(f"{where}.{PROGRESS_MARKERS}", f"must be an object, not {_kind(markers)}")
    if markers.get(BOOKMARK) is not None:
        _moment(markers[BOOKMARK], f"{where}.{PROGRESS_MARKERS}.{BOOKMARK}")
    for key in (DELIVERED_BEFORE, LAST_FULL_REFRESH):
        if stream_state.get(key) is not None:
            _moment(stream_state[key], f"{where}.{key}")
    _check_count(stream_state.get(LAST_FULL_REFRESH_USERS), f"{where}.{LAST_FULL_REFRESH_USERS}")
    refresh = stream_state.get(FULL_REFRESH)
    if refresh is not None and not (isinstance(refresh, dict) and is_int(refresh.get("version"))):
        _invalid_state(
            f"{where}.{FULL_REFRESH}",
            'must be {"version": <integer>, "started_at": <date-time>}',
        )
    if stream_state.get(IN_FLIGHT) is not None:
        _check_in_flight(stream_state[IN_FLIGHT], f"{where}.{IN_FLIGHT}")


def _check_count(count: object, where: str) -> None:
    """Check a count of users the state keeps (absent, or an integer of 0 or more)."""
    if count is not None and not (is_int(count) and int(str(count)) >= 0):
        _invalid_state(where, f"must be a number of users (0 or more), not {_excerpt(count)}")


def _check_in_flight(entry: object, where: str) -> None:
    """Check the recorded export task: an object with an integer id and known key kinds."""
    shape = (
        'must be an object like {"id": 1001, "key": "3f2a9c1b7e4d5a60", '
        '"created_at": "2024-01-31T00:00:00+00:00"}'
    )
    if not isinstance(entry, dict) or not is_int(entry.get("id")) or entry["id"] <= 0:
        _invalid_state(where, f"{shape}, not {_excerpt(entry)}")
    for key, fits in _IN_FLIGHT_KINDS.items():
        if key in entry and not fits(entry[key]):
            _invalid_state(f"{where}.{key}", f"has the wrong kind of value: {_excerpt(entry[key])}")
    if isinstance(entry.get("created_at"), str):
        _moment(entry["created_at"], f"{where}.created_at")


def _moment(value: object, where: str) -> dt.datetime:
    """Read a state date-time (ISO 8601 text), naming the key when it is not one."""
    if isinstance(value, str):
        try:
            return parse_utc(value)
        except ValueError:
            pass
    return _invalid_state(
        where,
        f"must be an ISO 8601 date-time like 2024-01-31T00:00:00+00:00, not {_excerpt(value)}",
    )


def _kind(value: object) -> str:
    """A JSON value's kind, as JSON names it."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return kinds.get(type(value), "null" if value is None else "a number")


def _excerpt(value: object) -> str:
    """A value for a message, cut short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:80] + "..."  # noqa: PLR2004


def _invalid_state(where: str, problem: str) -> NoReturn:
    """Raise the error for an input state key: ``State <key> <problem>.``."""
    subject = f"State {where}" if where else "The state"
    msg = f"{subject} {problem}. The state is the last STATE message a run wrote (--state)."
    raise SpaazaStateError(msg)
