"""meltanolabs-target-postgres 0.8.1, with the work it repeats per record done once.

The target is unchanged in what it writes: the same tables, columns and types, the same
rows after each batch, the same ``_sdc_*`` metadata and the same ACTIVATE_VERSION
handling. Its input is read with the SDK's msgspec decoder, a block of lines per call
(``reader``), and its steps are only reorganised:

- Before loading, the SDK parses every date and date-time value of a record. To find them
  it asks, for every field of every record, whether the field's schema is date-like (about
  50 questions per users record). Here the date-like fields are found once per schema and
  only those are parsed, with the same parsers and the same treatment of a bad value.
- A RECORD goes through the SDK's steps in the SDK's order, without the layers around them
  (stream lookups, a loop over one stream map) when no mapping is configured; a run of
  consecutive RECORD messages of such a stream, decoded in one block, is staged with every
  lookup and test made once for the run (``runs``). A stream map, flattening, record
  validation or a sink that overrides a step takes the SDK's path.
- With ``use_copy``, the target builds one dict per record (reading the
  ``sanitize_null_text_characters`` setting through two properties for every value), then a
  list from that dict. Here each row is taken once, in column order, by one ``itemgetter``
  call, with the setting read once per batch; a Boolean column whose values its processor
  would return unchanged (None, True, False) is left as it is; psycopg sends the rows from
  its own writer thread.
  Without ``use_copy`` the target's own INSERT path runs.
- With the record metadata on, a run is staged a field at a time by C loops (``columns``),
  with the values the per-record steps give, where no record of it could be treated
  differently.
- A batch whose keys are all new to its table (or of a stream without keys), into a table
  with exactly the schema's columns, is copied into the table itself: the merge would
  insert every row of the temporary table and update none (``direct``). COPY rows are
  taken, processed and formatted by C loops a block at a time (``rows``).
- A pipe on standard input is asked to hold 1 MB (Linux), so Meltano, which relays one line
  per write, waits on the target less often (``reader``).
- A full batch loads in a thread while the next one is read (``drain``); everything else
  waits for it, so a STATE message still follows the rows it covers.
- The merge of a batch runs the target's UPDATE before its INSERT of the new rows, so a row
  inserted by the batch is not written a second time (``FastPostgresSink.upsert``).
- A JSONL BATCH file is read as the SDK reads it (its records as they are: no metadata, no
  date parsing, no validation), decompressed and decoded a block at a time
  (``batchfiles``); its records load in the background while the next file is read. A
  stream that would not take the run staging, or another format, takes the SDK's path.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchFileFormat
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import Sink
from target_postgres.target import TargetPostgres

from target_postgres_fast.drain import BackgroundDrain
from target_postgres_fast.reader import BlockMsgSpecReader
from target_postgres_fast.runs import passes_through, plain_steps
from target_postgres_fast.sink import FastPostgresSink

__all__ = ["FastPostgresSink", "FastTargetPostgres", "main"]


class FastTargetPostgres(TargetPostgres):
    """target-postgres reading with msgspec, its streams loading through FastPostgresSink.

    The SDK's msgspec reader decodes numbers with a fraction as ``Decimal``, as its default
    reader does.
    """

    default_sink_class = FastPostgresSink
    message_reader_class = BlockMsgSpecReader

    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        """Process a RECORD message as the SDK does, with fewer layers per record.

        Only for a stream whose one stream map passes records through (no mapping
        configured) into a FastPostgresSink; anything else takes the SDK's own path. The
        steps and their order are the SDK's: copy the record, flatten it if configured,
        add the ``_sdc_*`` metadata, parse its date-like values, check its key
        properties, stage it, drain the sink when full and check the records' age.
        """
        stream_name = message_dict.get("stream")
        maps = self.mapper.stream_maps.get(stream_name) if "record" in message_dict else None
        sink = self._sinks_active.get(stream_name) if maps else None
        if (
            maps is None
            or len(maps) != 1
            or type(maps[0]) is not SameRecordTransform
            or maps[0].stream_alias != stream_name
            or not isinstance(sink, FastPostgresSink)
        ):
            super()._process_record_message(message_dict)
            return
        record = maps[0].transform(copy.copy(message_dict["record"]))
        context = sink._get_context(record)  # noqa: SLF001 - the SDK's own step
        if sink.include_sdc_metadata_properties:
            sink._add_sdc_metadata_to_record(record, message_dict, context)  # noqa: SLF001
        else:
            sink._remove_sdc_metadata_from_record(record)  # noqa: SLF001
        sink._validate_and_parse(record)  # noqa: SLF001
        record = sink.preprocess_record(record, context)
        sink._singer_validate_message(record)  # noqa: SLF001
        sink.tally_record_read()
        sink.process_record(record, context)
        sink.record_counter_metric.increment()
        sink._after_process_record(context)  # noqa: SLF001
        if sink.is_full:
            self._drain_full(sink)
        self._handle_max_record_age()

    def stage_run(self, messages: list[dict[str, Any]], start: int) -> int:
        """Stage the run of RECORD messages from ``messages[start]`` on (``runs``).

        Returns:
            How many messages were staged: 0 where the stream needs the SDK's path.
        """
        stream_name = messages[start].get("stream")
        sink = self._sinks_active.get(stream_name)  # type: ignore[arg-type]
        if (
            not isinstance(sink, FastPostgresSink)
            or not passes_through(self.mapper.stream_maps.get(stream_name), stream_name)
            or not plain_steps(sink)
        ):
            return 0
        staged = sink.stager(self._drain_full).stage(messages, start, stream_name)
        self._handle_max_record_age()
        return staged

    def _drain_full(self, sink: Sink) -> None:
        """Load a full sink's batch in the background, logged as the SDK logs its drain."""
        self.logger.info(
            "Target sink for '%s' is full. Current size is '%s'. Draining...",
            sink.stream_name,
            sink.current_size,
        )
        self.background_drain.start(sink)

    @functools.cached_property
    def background_drain(self) -> BackgroundDrain:
        """The batch loading while the next one is read (at most one)."""
        return BackgroundDrain()

    def drain_one(self, sink: Sink) -> None:
        """Drain as the SDK does, once the batch loading in the background is done."""
        self.background_drain.finish()
        super().drain_one(sink)

    def drain_all(self, *, is_endofpipe: bool = False) -> None:
        """Drain all as the SDK does, once the batch loading in the background is done."""
        self.background_drain.finish()
        super().drain_all(is_endofpipe=is_endofpipe)

    def _process_schema_message(self, message_dict: dict[str, Any]) -> None:
        self.background_drain.finish()
        super()._process_schema_message(message_dict)

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        self.background_drain.finish()
        super()._process_state_message(message_dict)

    def _process_activate_version_message(self, message_dict: dict[str, Any]) -> None:
        self.background_drain.finish()
        super()._process_activate_version_message(message_dict)

    def _process_batch_message(self, message_dict: dict[str, Any]) -> None:
        """Load a BATCH message's files as the SDK does, JSONL files read in blocks.

        Only for JSONL files of a stream whose run staging would be taken (one map passing
        records through, no validation, no flattening) into a FastPostgresSink that reads
        files as the SDK does; anything else waits for the batch loading in the background,
        then takes the SDK's own path. Each file's records load in the background while the
        next file is read.
        """
        stream_name = message_dict["stream"]
        encoding = BaseBatchFileEncoding.from_dict(message_dict["encoding"])
        sink = self._sinks_active.get(stream_name)
        if (
            encoding.format != BatchFileFormat.JSONL
            or not isinstance(sink, FastPostgresSink)
            or type(sink).process_batch_files is not Sink.process_batch_files
            or not passes_through(self.mapper.stream_maps.get(stream_name), stream_name)
            or not plain_steps(sink)
        ):
            self.background_drain.finish()
            super()._process_batch_message(message_dict)
            return
        sink.load_jsonl_files(encoding, message_dict["manifest"], self.background_drain.load)
        self._handle_max_record_age()

    def process_endofpipe(self) -> None:
        """Finish the batch loading in the background, then end as the SDK does."""
        self.background_drain.finish()
        super().process_endofpipe()


def main() -> None:
    """Run the target (same settings and command line as target-postgres)."""
    FastTargetPostgres.cli()


if __name__ == "__main__":
    main()
