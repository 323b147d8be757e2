"""The bookmark and whose it is: where a sync starts, how far it got, which chain and selection.

The SDK keeps the bookmark and its progress markers; the stream promotes the markers after
each delivered window (``close_window``), and advances the backfill watermark
(``delivered_before``) with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.errors import SpaazaStateError
from tap_spaaza_users.state.keys import (
    BOOKMARK,
    CHAIN_ID,
    DELIVERED_BEFORE,
    DELIVERED_TASKS,
    FULL_REFRESH,
    LAST_FULL_REFRESH_USERS,
    PROGRESS_MARKERS,
    REPLICATION_KEY,
    SELECTION,
    STARTING_VALUE,
    State,
)

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
