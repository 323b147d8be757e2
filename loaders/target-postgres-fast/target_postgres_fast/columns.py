"""The records of a run staged a field at a time, by C loops, with the values the SDK's steps give.

``runs`` stages each record of a run with the SDK's steps in the SDK's order: the ``_sdc_*``
metadata, then the date-like values parsed (kept as COPY text where that is the same), the
key properties checked. That is about thirty Python operations per record. Here the same
values are computed for all the records of a run (or of what fits in the sink's batch) one
field at a time, by ``map`` over the run: no Python code runs per record. Only where nothing
can differ from the per-record steps:

- first, with nothing changed yet, every record must have its key properties and (for a
  schema without ``additionalProperties``) no field the schema lacks, and every date-like
  value must parse; otherwise the per-record steps run (they warn and fail as the SDK does);
- the metadata are the SDK's: ``_sdc_received_at`` and ``_sdc_sequence`` read the clock once
  per record (``now`` and ``time.time`` called by ``map``); ``_sdc_received_at``,
  ``_sdc_batched_at`` and ``_sdc_sync_started_at``, which the SDK writes with ``isoformat``
  and parses again, are staged as what that parse gives (``fromisoformat`` of ``isoformat``
  is the same moment), as COPY text where the per-record steps would keep it as text;
- a date-like value is parsed by the SDK's parser; where COPY text may be kept, the values of
  a field are tested all at once, joined by newlines, by the pattern the per-record steps
  test each with (``runs.WHOLE``, ``runs.CANONICAL``), and turned into the same text by
  ``map``; where one fails, each is tested as the per-record steps test it.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
from collections import deque
from itertools import compress, repeat, starmap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

#: One date-like field: (name, format, the SDK's parser, the per-record COPY text test or None).
Datelike = tuple[str, str, "Callable[[str], Any]", "Callable[[str], str | None] | None"]
#: The metadata the SDK writes as ``isoformat`` text and the date-like step parses again.
GENERATED = ("_sdc_received_at", "_sdc_batched_at", "_sdc_sync_started_at")
_ISOFORMAT = operator.methodcaller("isoformat")
_UTC = dt.timezone.utc


def column(records: list[dict[str, Any]], name: str) -> list[Any]:
    """Every record's value of a field (None where it is missing, as ``dict.get``)."""
    return list(map(dict.get, records, repeat(name)))


def set_column(records: list[dict[str, Any]], name: str, values: Any) -> None:  # noqa: ANN401
    """Set a field of every record to the matching value."""
    deque(map(operator.setitem, records, repeat(name), values), maxlen=0)


def staged_values(
    values: list[str],
    kind: str,
    parser: Callable[[str], Any],
    canonical: Any,  # noqa: ANN401
    whole: Callable[[str], object] | None,
) -> list[Any] | None:
    """What the per-record steps stage for each value (none None), or None if one fails to parse.

    Raises nothing: a value that does not parse (or is no string) is left to the per-record
    steps, which treat it as the SDK does. ``whole`` tests all the values at once as
    ``canonical`` tests each; where one fails, each is tested by ``canonical``.
    """
    try:
        parsed = list(map(parser, values))
    except Exception:  # noqa: BLE001 - the per-record steps raise or treat it as the SDK does
        return None
    if canonical is None:
        return parsed
    joined = "\n".join(values) + "\n"
    if whole is not None and joined.count("\n") == len(values) and whole(joined):
        if kind != "date-time":
            return values
        # canonical's text: a space for the T (the 11th character), +00:00 for a final Z.
        texts = map(str.replace, values, repeat("T"), repeat(" "), repeat(1))
        if "Z" in joined:
            texts = map(str.replace, texts, repeat("Z"), repeat("+00:00"))
        return list(texts)
    return [
        parsed_value if (text := canonical(value)) is None else text
        for value, parsed_value in zip(values, parsed, strict=True)
    ]


class ColumnStager:
    """Stages a run's records a field at a time (see the module); built once per schema."""

    def __init__(
        self,
        datelike: list[Datelike],
        keys: tuple[str, ...],
        properties: dict[str, Any] | None,
        whole: dict[str, Callable[[str], object]],
    ) -> None:
        """Prepare for a schema (with the ``_sdc_*`` metadata columns).

        Args:
            datelike: The schema's date-like fields, as ``runs.RunStager`` gets them.
            keys: The key properties.
            properties: The schema's properties when it has no ``additionalProperties``
                (a record with another field takes the per-record steps), else None.
            whole: Per format, the test of a whole column (its values each followed by a
                newline) that passes where the COPY text test passes every value.
        """
        self.generated = {field[0]: field for field in datelike if field[0] in GENERATED}
        self.fields = [field for field in datelike if field[0] not in GENERATED]
        self.keys = keys
        self.names = properties.keys() if properties is not None else None
        self.whole = whole

    def stage(
        self,
        messages: list[dict[str, Any]],
        batched_at: dt.datetime,
        sync_started_at: Any,  # noqa: ANN401 - the SDK's value, as it has it
    ) -> list[dict[str, Any]] | None:
        """The messages' records with their metadata and staged values; None: nothing changed.

        None where a record lacks a key property, has a field the schema lacks, or has a
        date-like value that does not parse: the per-record steps then take these messages.
        """
        records: list[dict[str, Any]] = list(map(operator.itemgetter("record"), messages))
        for key in self.keys:
            if not all(map(operator.contains, records, repeat(key))):
                return None
        if self.names is not None and not all(map(self.names.__ge__, map(dict.keys, records))):
            return None
        extracted = column(messages, "time_extracted")
        staged = self._staged_fields(records, extracted)
        constants = self._constants(batched_at.isoformat(), sync_started_at)
        if staged is None or constants is None:
            return None
        count = len(records)
        now: list[Any] = list(map(dt.datetime.now, repeat(_UTC, count)))
        received = self.generated.get("_sdc_received_at")
        if received is None:
            now = list(map(_ISOFORMAT, now))  # not date-like: the SDK's text
        elif received[3] is not None:
            now = list(map(str, now))  # the COPY text the per-record steps keep
        set_column(records, "_sdc_extracted_at", extracted)
        set_column(records, "_sdc_received_at", now)
        set_column(records, "_sdc_batched_at", repeat(constants[0]))
        set_column(records, "_sdc_deleted_at", column(records, "_sdc_deleted_at"))
        milliseconds = map(operator.mul, starmap(time.time, repeat((), count)), repeat(1000))
        sequence = map(round, milliseconds)
        set_column(records, "_sdc_sequence", sequence)
        set_column(records, "_sdc_table_version", column(messages, "version"))
        set_column(records, "_sdc_sync_started_at", repeat(constants[1]))
        for name, holders, converted in staged:
            set_column(holders, name, converted)
        return records

    def _staged_fields(
        self, records: list[dict[str, Any]], extracted: list[Any]
    ) -> list[tuple[str, list[dict[str, Any]], list[Any]]] | None:
        """Per date-like field: the records with a value and their staged values (None: one fails).

        ``_sdc_extracted_at`` is the message's ``time_extracted`` (few distinct values: each
        is converted once); the other fields are the record's own values.
        """
        staged = []
        for name, kind, parser, canonical in self.fields:
            values = extracted if name == "_sdc_extracted_at" else column(records, name)
            present = list(map(operator.is_not, values, repeat(None)))
            holders = records
            if not all(present):
                values = list(compress(values, present))
                holders = list(compress(records, present))
            whole = self.whole.get(kind)
            if name == "_sdc_extracted_at":
                converted = distinct_staged_values(values, kind, parser, canonical, whole)
            else:
                converted = staged_values(values, kind, parser, canonical, whole) if values else []
            if converted is None:
                return None
            staged.append((name, holders, converted))
        return staged

    def _constants(self, batched_at: str, sync_started_at: Any) -> tuple[Any, Any] | None:  # noqa: ANN401
        """The staged ``_sdc_batched_at`` and ``_sdc_sync_started_at`` (None: one fails)."""
        values = [batched_at, sync_started_at]
        for index, name in enumerate(("_sdc_batched_at", "_sdc_sync_started_at")):
            field = self.generated.get(name)
            if field is None or values[index] is None:
                continue
            converted = staged_values([values[index]], *field[1:], self.whole.get(field[1]))
            if converted is None:
                return None
            values[index] = converted[0]
        return values[0], values[1]


def distinct_staged_values(
    values: list[Any],
    kind: str,
    parser: Callable[[str], Any],
    canonical: Any,  # noqa: ANN401
    whole: Callable[[str], object] | None,
) -> list[Any] | None:
    """``staged_values``, each distinct value converted once (None: one fails)."""
    try:
        distinct = list(dict.fromkeys(values))
    except TypeError:  # a value that is no string: the per-record steps treat it
        return None
    converted = staged_values(distinct, kind, parser, canonical, whole) if distinct else []
    if converted is None:
        return None
    return list(map(dict(zip(distinct, converted, strict=True)).__getitem__, values))
