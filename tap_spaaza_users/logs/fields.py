"""The structured fields of the tap's own log lines, named once, for log pipelines to alert on.

With the SDK's JSON log format (Meltano turns it on for taps that declare the
``structured-logging`` capability), each record's ``extra`` object carries these fields
beside the readable message: ``task_id``, ``window_start`` and ``window_end`` (ISO 8601, or
null for an open side), ``state``, ``bytes``, ``rows``, ``rows_per_second``, ``seconds`` and
the like. docs/logging.md lists which message carries which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt


def log_fields(
    task_id: int | None = None,
    window: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    **values: object,
) -> dict[str, object]:
    """The ``extra`` of a log call: the task, its window and other values.

    Args:
        task_id: The export task the line is about, if any.
        window: The start and end of the window the line is about, if any: ``window_start``
            and ``window_end`` (ISO 8601; null for an open side).
        **values: Further fields (numbers, text); a float is rounded to 3 decimals.

    Returns:
        The fields, without any whose value is None.
    """
    fields: dict[str, object] = {}
    if task_id is not None:
        fields["task_id"] = task_id
    if window is not None:
        start, end = window
        fields["window_start"] = start.isoformat() if start else None
        fields["window_end"] = end.isoformat() if end else None
    for name, value in values.items():
        if value is not None:
            fields[name] = round(value, 3) if isinstance(value, float) else value
    return fields
