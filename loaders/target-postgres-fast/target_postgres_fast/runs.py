"""A run of RECORD messages of one stream, staged with the SDK's steps hoisted out of the loop.

For each RECORD the SDK looks up the stream's maps and sink, copies the record, asks the
sink for its context, adds the ``_sdc_*`` metadata, parses the date-like values, checks the
key properties, tallies the record, stages it, increments a metric, logs a debug line and
checks whether the sink is full and whether any record is too old. When the stream has one
stream map that passes records through (no mapping, no flattening) into a sink that
overrides none of those steps and validates nothing, every lookup and test is the same for
all the records of a block: here they are made once per run of consecutive RECORD messages
of that stream, and each record gets only the steps that change it, in the SDK's order:

- the metadata, as the SDK adds it (``_sdc_received_at`` and ``_sdc_sequence`` read the
  clock for every record, ``_sdc_batched_at`` is the batch's start);
- the date-like values, parsed with the SDK's parsers and its treatment of a bad value;
  with ``use_copy``, a value written the way psycopg would write its parsed value back
  (``CANONICAL``) keeps that text instead (see below);
- the key properties' check, the tally and the staging; the metric is incremented and the
  records' age checked once per run; a full sink is drained at once, as the SDK does.

With the metadata on and no debug log, a piece of a run (what fits in the sink's batch) is
staged a field at a time by C loops instead (``columns``), with the same values, wherever no
record of the piece could be treated differently (a test stages pieces both ways).

The record is not copied: the message it came in is decoded for this run and used by
nothing else.

With ``use_copy`` the parsed values go nowhere but into COPY's text, where psycopg writes a
date as ``str(date)`` and a date-time as ``str(datetime)``: about a microsecond and a half
each, several per record. A date-time that parses and is written as ISO 8601 with a ``T``,
whole seconds or six digits of fraction (not all zero), and ``Z``, an offset in hours and
minutes (not ``-00:00``) or none, is exactly ``str`` of its parsed value with a space for the
``T`` (and ``+00:00`` for a ``Z``);
a date that parses and is ``YYYY-MM-DD`` is exactly ``str`` of its value. Such a value is
staged as that text (the bytes COPY receives are the same: a test compares them), unless its
field is a key property (keys are compared as values) or its column's type processes the
value before COPY.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import re
import time
from itertools import compress, count, repeat
from typing import TYPE_CHECKING, Any

from singer_sdk.helpers._typing import handle_invalid_timestamp_in_record
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import BatchSink, Sink

from target_postgres_fast.columns import ColumnStager

if TYPE_CHECKING:
    from collections.abc import Callable

#: A date-time, a date written as psycopg writes its parsed value (with a T, or a Z).
_PATTERNS = {
    "date-time": (
        r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.(?!0{6})\d{6})?"
        r"(?:Z|(?!-00:00)[+-](?:[01]\d|2[0-3]):[0-5]\d)?"
    ),
    "date": r"\d{4}-\d{2}-\d{2}",
}
_DATETIME = re.compile(_PATTERNS["date-time"], re.ASCII).fullmatch
_DATE = re.compile(_PATTERNS["date"], re.ASCII).fullmatch
#: Per format: the test of a whole column at once, its values joined each with a newline
#: (the patterns match no newline: a column passes when every value passes ``CANONICAL``).
WHOLE = {
    kind: re.compile(f"(?:{pattern}\n)*", re.ASCII).fullmatch for kind, pattern in _PATTERNS.items()
}


def datetime_text(value: str) -> str | None:
    """``str`` of the value's parsed date-time, if the value is written as it writes it.

    ``str`` writes a space for the ``T`` and ``+00:00`` for a ``Z``.
    """
    if not _DATETIME(value):
        return None
    if value[-1] == "Z":
        return f"{value[:10]} {value[11:-1]}+00:00"
    return f"{value[:10]} {value[11:]}"


def date_text(value: str) -> str | None:
    """``str`` of the value's parsed date (the value itself), if it is ``YYYY-MM-DD``."""
    return value if _DATE(value) else None


#: Per date-like format: the text psycopg writes for a value's parsed value, where it is
#: read off the value (None: it is not).
CANONICAL: dict[str, Callable[[str], str | None]] = {
    "date-time": datetime_text,
    "date": date_text,
}
#: The ``_sdc_*`` metadata the SDK adds to a record (and its schema).
METADATA = {
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
}
#: The sink steps a run does itself: a sink class that overrides one takes the SDK's path.
STEPS = ("_get_context", "preprocess_record", "process_record", "_after_process_record")
BASES: dict[str, Any] = {
    "_get_context": BatchSink._get_context,  # noqa: SLF001
    "preprocess_record": Sink.preprocess_record,
    "process_record": BatchSink.process_record,
    "_after_process_record": Sink._after_process_record,  # noqa: SLF001
}


def passes_through(maps: list[Any] | None, stream_name: str) -> bool:
    """Whether the stream's maps are one map that hands each record on unchanged."""
    if maps is None or len(maps) != 1:
        return False
    stream_map = maps[0]
    return (
        type(stream_map) is SameRecordTransform
        and stream_map.stream_alias == stream_name
        and not (stream_map.flattening_options and stream_map.flattening_enabled)
    )


def plain_steps(sink: Sink) -> bool:
    """Whether the sink validates nothing and overrides none of the steps a run does."""
    kind = type(sink)
    return sink._validator is None and all(  # noqa: SLF001 - the SDK's own validator
        getattr(kind, step) is BASES[step] for step in STEPS
    )


def run_length(messages: list[dict[str, Any]], stream_name: str) -> int:
    """How many of the messages, from the first, are RECORD messages of the stream (C loops)."""
    records = map(operator.eq, map(dict.get, messages, repeat("type")), repeat("RECORD"))
    streams = map(operator.eq, map(dict.get, messages, repeat("stream")), repeat(stream_name))
    runs = map(
        operator.and_,
        map(operator.and_, records, streams),
        map(operator.contains, messages, repeat("record")),
    )
    return next(compress(count(), map(operator.not_, runs)), len(messages))


class RunStager:
    """Stages runs of RECORD messages of one stream into one sink (see the module)."""

    def __init__(
        self,
        sink: Sink,
        datelike: list[tuple[str, str, Callable[[str], Any], Callable[[str], str | None] | None]],
        drain: Callable[[Sink], None],
    ) -> None:
        """Prepare for the sink's current schema.

        Args:
            sink: The stream's sink.
            datelike: The schema's date-like fields: (name, kind, the SDK's parser, and
                the test of a value staged as its COPY text, or None to stage the parsed
                value).
            drain: What to do with a full sink (the target's background drain).
        """
        self.sink = sink
        self.datelike = datelike
        #: What ``datelike`` was made from (the sink rebuilds this when that changes).
        self.datelike_source: object = None
        self.drain = drain
        self.keys = tuple(sink.key_properties)
        self.sdc = sink.include_sdc_metadata_properties
        self.debug = sink.logger.isEnabledFor(logging.DEBUG)
        self.treatment = sink.datetime_error_treatment
        self.properties = sink.schema["properties"]
        self.strict = not sink.schema.get("additionalProperties", False)
        #: Stages a piece of a run a field at a time: with the metadata and no debug log.
        self.columns: ColumnStager | None = None
        if self.sdc and not self.debug and self.properties.keys() >= METADATA:
            properties = self.properties if self.strict else None
            self.columns = ColumnStager(datelike, self.keys, properties, WHOLE)

    def stage(self, messages: list[dict[str, Any]], start: int, stream_name: str) -> int:
        """Stage the RECORD messages of the stream from ``messages[start]`` on.

        The run is staged in pieces that each fill the sink's batch at most, a piece a
        field at a time (``columns``) where that gives the same records, else record by
        record; a full sink is drained after the record that fills it, as the SDK does.

        Returns:
            How many messages were staged (the run stops at the first other message).
        """
        sink = self.sink
        end = start + run_length(messages[start:], stream_name)
        index = start
        while index < end:
            stop = min(end, index + max(sink.max_size - sink.current_size, 1))
            piece = messages[index:stop]
            # The SDK's context, the same for every record of a batch.
            context = sink._get_context(piece[0]["record"])  # noqa: SLF001
            records = context.setdefault("records", [])
            batched_at = context.get("batch_start_time")
            staged = None
            if self.columns is not None and batched_at is not None:
                staged = self.columns.stage(piece, batched_at, sink.sync_started_at)
            if staged is None:
                self._stage_records(piece, context, records)
            else:
                records += staged
            sink._total_records_read += len(piece)  # noqa: SLF001 - tally_record_read
            sink._batch_records_read += len(piece)  # noqa: SLF001
            sink.record_counter_metric.increment(len(piece))
            index = stop
            if sink.is_full:
                self.drain(sink)
        return end - start

    def _stage_records(
        self,
        messages: list[dict[str, Any]],
        context: dict[str, Any],
        records: list[dict[str, Any]],
    ) -> None:
        """Stage the messages' records one at a time, with the SDK's steps in its order."""
        sink = self.sink
        now = dt.datetime.now
        utc = dt.timezone.utc
        batched_at = context.get("batch_start_time")
        batched = batched_at.isoformat() if batched_at else None
        for message in messages:
            record = message["record"]
            if self.sdc:
                record["_sdc_extracted_at"] = message.get("time_extracted")
                record["_sdc_received_at"] = now(tz=utc).isoformat()
                record["_sdc_batched_at"] = batched or now(tz=utc).isoformat()
                record["_sdc_deleted_at"] = record.get("_sdc_deleted_at")
                record["_sdc_sequence"] = round(time.time() * 1000)
                record["_sdc_table_version"] = message.get("version")
                record["_sdc_sync_started_at"] = sink.sync_started_at
            else:
                sink._remove_sdc_metadata_from_record(record)  # noqa: SLF001
            self._parse(record)
            for key in self.keys:
                if key not in record:
                    sink._singer_validate_message(record)  # noqa: SLF001 - raises the SDK's error
            records.append(record)
            if self.debug:
                sink.logger.debug("Processed record: %s", context)

    def _parse(self, record: dict[str, Any]) -> None:
        """Parse the record's date-like values as the SDK does (see the module)."""
        if self.strict and not self.properties.keys() >= record.keys():
            self._warn_missing_fields(record)
        for key, kind, parser, canonical in self.datelike:
            value = record.get(key)
            if value is None:
                continue
            try:
                parsed = parser(value)
            except ValueError as ex:
                record[key] = handle_invalid_timestamp_in_record(
                    record, [key], value, kind, ex, self.treatment, self.sink.logger
                )
                continue
            text = canonical(value) if canonical is not None else None
            record[key] = parsed if text is None else text

    def _warn_missing_fields(self, record: dict[str, Any]) -> None:
        """Warn once per field about a record's non-null values the schema does not have."""
        warned = self.sink._warned_missing_fields  # noqa: SLF001 - the SDK's own set
        for key, value in record.items():
            if key not in self.properties and value is not None and key not in warned:
                self.sink.logger.warning("No schema for record field '%s'", key)
                warned.add(key)
