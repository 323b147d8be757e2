"""How long this chain's recent exports took, kept in the state for a "usually ~N s" estimate.

The stream state holds, under ``export_seconds``, the durations (creation to DONE, as the
tap saw them) of the last few export tasks the tap created, by kind: ``whole`` (every user,
or a saved segment exported whole) and ``window`` (users created in a window, the usual
incremental sync). Each kind is kept apart because a whole export of a large chain takes far
longer than an increment. The estimate is only a hint: a value that is not such a list is
dropped (and rebuilt by the next exports), never an error.

Durations are whole seconds: a float in a STATE message breaks SDK targets, which read
numbers as ``Decimal`` and then cannot write the state back out as JSON.
"""

from __future__ import annotations

import decimal
import statistics
from typing import Any

#: The stream state key.
EXPORT_SECONDS = "export_seconds"
#: The durations kept per kind (the newest last).
KEPT = 5
WHOLE = "whole"
WINDOW = "window"
KINDS = (WHOLE, WINDOW)


def kind_of(task: object) -> str:
    """Whether a task (or a ``POST /tasks`` body) exports a ``window`` or the ``whole`` selection.

    Args:
        task: The task object or body: a window is a ``created_date`` rule in its segment.

    Returns:
        ``window`` or ``whole``.
    """
    trigger = task.get("trigger") if isinstance(task, dict) else None
    segment = trigger.get("segment") if isinstance(trigger, dict) else None
    rules = segment.get("rules") if isinstance(segment, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict) and rule.get("field_name") == "created_date":
            return WINDOW
    return WHOLE


def history(stream_state: dict[str, Any]) -> dict[str, list[int]]:
    """The state's durations by kind, in place (the next STATE written carries additions).

    Args:
        stream_state: The users stream's state.

    Returns:
        The durations by kind, each a list of seconds, oldest first.
    """
    kept = stream_state.get(EXPORT_SECONDS)
    if not isinstance(kept, dict):
        kept = stream_state[EXPORT_SECONDS] = {}
    for kind in list(kept):
        values = kept[kind]
        if kind in KINDS and isinstance(values, list) and all(map(_seconds, values)):
            kept[kind] = [round(value) for value in values]
        else:
            del kept[kind]
    return kept


def note(durations: dict[str, list[int]], kind: str, seconds: float) -> None:
    """Add an export's duration, keeping the last ``KEPT`` of its kind.

    Args:
        durations: The durations by kind (from :func:`history`).
        kind: ``whole`` or ``window``.
        seconds: Creation to DONE.
    """
    values = durations.setdefault(kind, [])
    values.append(round(seconds))
    del values[:-KEPT]


def usual(durations: dict[str, list[int]], kind: str) -> tuple[float, int] | None:
    """The median duration of the kind's recent exports, and how many it is taken over.

    Args:
        durations: The durations by kind (from :func:`history`).
        kind: ``whole`` or ``window``.

    Returns:
        (seconds, count), or None when no export of that kind was timed yet.
    """
    values = durations.get(kind) or []
    return (float(statistics.median(values)), len(values)) if values else None


def _seconds(value: object) -> bool:
    """Whether a kept value is a duration (a non-negative number, not a boolean)."""
    number = isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)
    return number and value >= 0  # type: ignore[operator]


def hint(durations: dict[str, list[int]], task: object) -> tuple[str, float | None]:
    """The heartbeat's estimate for a task: ``"usually ~N s ...; "`` and N, or nothing.

    Args:
        durations: The durations by kind (from :func:`history`).
        task: The task (its kind decides which durations count).

    Returns:
        The text (empty when no export of that kind was timed) and the median in seconds.
    """
    found = usual(durations, kind_of(task))
    if found is None:
        return "", None
    seconds, count = found
    exports = "export" if count == 1 else f"{count} exports"
    return f"usually ~{seconds:.0f} s by the last {exports} of this chain; ", seconds
