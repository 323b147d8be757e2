"""The stream's side of the SDK's private hooks: one place that reaches into the SDK's Stream."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream

from tap_spaaza_users.sdk_hooks.batching import BatchFiles
from tap_spaaza_users.sdk_hooks.shaping import add_string_columns, record_messages

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib.messages import RecordMessage


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
        """
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            flush = getattr(self._tap.message_writer, "flush", None)
            if flush is not None:
                flush()

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
                files.add(record)
            files.complete()
        finally:
            files.discard()
            self.before_state = None
        self._write_state_message()  # the bookmark, now that the files exist
