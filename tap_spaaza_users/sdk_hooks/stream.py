"""The stream's side of the SDK's private hooks: one place that reaches into the SDK's Stream."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from singer_sdk import Stream

from tap_spaaza_users.sdk_hooks.batching import ENCODE_RECORDS, BatchFiles
from tap_spaaza_users.sdk_hooks.shaping import (
    RecordMessageMaker,
    add_string_columns,
    record_messages,
)

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Generator, Iterable

    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib.messages import RecordMessage


#: Records are counted, and their messages encoded, every COUNT_BLOCK + 1 (a power of two).
COUNT_BLOCK = 511


class HookedStream(Stream):
    """A Stream whose per-record work is done once per file or per sync (see README.md here).

    Subclasses get small public methods for what would otherwise reach into the SDK:
    writing STATE now, the table version of RECORD messages, ACTIVATE_VERSION, and new
    columns in the schema.
    """

    #: Called before any STATE message is written (BATCH output completes its files there).
    before_state: Callable[[], None] | None = None

    @property
    def plugin_version(self) -> str:
        """The tap's version, as ``--about`` shows it."""
        return str(self._tap.plugin_version)

    def flush_state(self) -> None:
        """Write a STATE message now (the SDK writes one only when its state is dirty)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    @property
    def record_version(self) -> int | None:
        """The table version RECORD messages carry (a full refresh's), or None."""
        return self._stream_version

    @record_version.setter
    def record_version(self, version: int | None) -> None:
        self._stream_version = version

    def activate_version(self, version: int) -> None:
        """Write ACTIVATE_VERSION for a table version."""
        self._write_activate_version_message(version)

    def add_string_columns(self, names: list[str]) -> None:
        """Declare a file's unknown columns, then announce the schema again (if selected)."""
        add_string_columns(self, names)
        if self.selected:
            self._write_schema_message()

    @override
    def _write_state_message(self) -> None:
        """Complete what a STATE must follow (BATCH files), then write it."""
        if self.before_state is not None:
            self.before_state()
        super()._write_state_message()

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        """Nothing per record: the stream notes each file's greatest key once it is emitted.

        The SDK would compare every record's replication key with the progress marker; the
        stream already tracks the greatest one per file and notes it once the file was
        emitted, which is when it may count anyway.
        """

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict[str, Any], Any, Any]:
        """The SDK's sync, then the records the message writer holds back, even on an error.

        The tap's writer (sdk_hooks/writer.py) writes RECORD messages in blocks; the records
        of a sync that fails still reach the target, as they did with a write per message.
        A selected stream without partitions, record limit or ``post_process`` (this tap's
        case) takes ``_sync_records_in_blocks``, the same sync without the per-record steps
        that have nothing to do here.
        """
        try:
            if (
                context is None
                and not self.partitions
                and self.selected
                and self.ABORT_AT_RECORD_COUNT is None
                and type(self).post_process is Stream.post_process
            ):
                yield from self._sync_records_in_blocks(write_messages=write_messages)
            else:
                yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            flush = getattr(self._tap.message_writer, "flush", None)
            if flush is not None:
                flush()

    def _sync_records_in_blocks(self, *, write_messages: bool) -> Generator[dict[str, Any]]:
        """The SDK's ``_sync_records`` for one unpartitioned, selected stream, per block.

        The same messages in the same order (STATE every ``STATE_MSG_FREQUENCY`` records and
        at the end, the record counter, the sync timer), with the RECORD messages built here
        and encoded by the writer a block at a time (``encode_records``) instead of one
        message object, one SDK call chain and one encoder call per record. Child contexts,
        the progress marker (``_increment_stream_state``) and stream partitions have nothing
        to do for such a stream. ``time_extracted`` is read once per block of records.
        """
        counter, timer = self.get_record_counter(), self.get_sync_timer()
        writer = self._tap.message_writer
        batch: list[dict[str, Any]] | None = getattr(writer, "records", None)
        encode = getattr(writer, "encode_records", None)
        if not write_messages or batch is None or encode is None:
            batch = encode = None
        with counter, timer:
            counter.with_context({})
            timer.with_context({})
            self._write_starting_replication_value(None)
            frequency, count = self.STATE_MSG_FREQUENCY, 0
            message: RecordMessageMaker | None = None  # made at the first record, as the SDK
            alias, extracted = None, None
            records = cast("Iterable[dict[str, Any]]", self.get_records(None))
            for record in records:
                if batch is None:
                    pass
                elif alias is not None and self._stream_version is None:  # usual: inline
                    batch.append(
                        {
                            "type": "RECORD",
                            "stream": alias,
                            "record": record,
                            "time_extracted": extracted,
                        }
                    )
                else:
                    if message is None:
                        message = RecordMessageMaker(self)
                        alias, extracted = message.plain_alias, message.extracted
                    message.add(record, batch)
                count += 1
                if not count & COUNT_BLOCK:
                    counter.increment(COUNT_BLOCK + 1)
                    extracted = self._end_block(message, encode) or extracted
                if write_messages and not count % frequency:
                    self._write_state_message()
                yield record
            counter.increment(count & COUNT_BLOCK)
            if count:
                self.state_manager.is_flushed = False
            self._finalize_state(self.stream_state)
        if write_messages:
            self._write_state_message()

    def _end_block(
        self, message: RecordMessageMaker | None, encode: Callable[[], None] | None
    ) -> dt.datetime | None:
        """After a block of records: encode their messages; the time for the next block."""
        if encode is not None:
            encode()
            self.state_manager.is_flushed = False
        if message is None:
            return None
        message.tick()
        return message.extracted

    @override
    def _generate_record_messages(
        self, record: dict[str, Any]
    ) -> Generator[RecordMessage, None, None]:
        """RECORD messages: selection and stream maps applied as the SDK does (see shaping).

        The deselected fields are found once per sync, not looked up per field per record.
        """
        yield from record_messages(self, record, version=self._stream_version)

    @override
    def _sync_batches(self, batch_config: BatchConfig, context: Context | None = None) -> None:
        """BATCH files holding what RECORD messages would (see batching), STATE after them."""
        files = BatchFiles(self, batch_config)
        self.before_state = files.complete
        try:
            for record in self._sync_records(context, write_messages=False):
                files.waiting.append(record)
                if len(files.waiting) >= ENCODE_RECORDS:
                    files.add_waiting()
            files.complete()
        finally:
            files.discard()
            self.before_state = None
        self._write_state_message()  # the bookmark, now that the files exist
