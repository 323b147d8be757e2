"""Singer messages to standard output, RECORD messages written in blocks, the rest at once.

The SDK's msgspec writer flushes standard output after every message, and with
``PYTHONUNBUFFERED`` (common in containers) standard output has no buffer at all: either way,
one write into the pipe per record, and whoever reads the pipe (Meltano relays every line to
the target) wakes up once per record too. Here RECORD messages are gathered into blocks of
about 64 kB; any other message (SCHEMA, STATE, BATCH, ACTIVATE_VERSION) is written at once,
after every record before it. A STATE therefore never reaches the target before the records
it covers, and nothing the tap has said waits in the buffer while it polls, downloads or
sleeps. A sync that ends in an error writes what is left (``HookedStream._sync_records``); one
stopped by a signal writes its STATE, and so the records before it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.contrib.msgspec import encoder as json_encoder
from singer_sdk.singerlib.messages import SingerMessageType

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.singerlib.messages import Message

#: RECORD messages are written once this many bytes of them are waiting.
BLOCK_BYTES = 1 << 16


def write_out(pending: bytearray) -> None:
    """Write and empty ``pending`` into standard output, all of it, and flush.

    Args:
        pending: The encoded messages waiting.
    """
    out = sys.stdout.buffer
    with memoryview(pending) as view:
        done = 0
        while done < len(view):
            done += out.write(view[done:]) or 0  # an unbuffered stdout may write part of it
    pending.clear()
    out.flush()


class BufferedRecordWriter(MsgSpecWriter):
    """MsgSpecWriter that writes RECORD messages in blocks, every other message at once.

    A signal handler that wants to write (the tap's SIGTERM handler writes its STATE) must
    not do so while a block is half written: its message would land inside a record, or
    the block would be cut short. While ``writing``, it leaves its work in ``after_write``,
    which runs as soon as the block is out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Start with nothing waiting."""
        super().__init__(*args, **kwargs)
        self.pending = bytearray()
        #: RECORD messages (as ``RecordMessage.to_dict`` gives them) the stream appends
        #: here; they are encoded together, before any other message (``encode_records``).
        self.records: list[dict[str, Any]] = []
        self.writing = False
        self.after_write: Callable[[], None] | None = None

    def flush(self) -> None:
        """Write the RECORD messages waiting, if any."""
        if self.records:
            self.encode_records()
        if self.pending:
            self._write_pending()

    def encode_records(self) -> None:
        """Encode the messages in ``records`` into the block, in one call; write it if full."""
        self.writing = True  # a signal handler waits: the messages must not be lost or doubled
        try:
            self.pending += json_encoder.encode_lines(self.records)
            self.records.clear()
        finally:
            self.writing = False
        if len(self.pending) >= BLOCK_BYTES or self.after_write is not None:
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the waiting messages whole, then run what a signal handler left to do."""
        self.writing = True
        try:
            write_out(self.pending)
        finally:
            self.writing = False
        task, self.after_write = self.after_write, None
        if task is not None:
            task()

    @override
    def write_message(self, message: Message) -> None:
        """Add a message to the block; write the block unless it is a RECORD (or full).

        Args:
            message: The message to write.
        """
        if self.records:
            self.encode_records()
        self.pending += self.format_message(message)
        if message.type != SingerMessageType.RECORD or len(self.pending) >= BLOCK_BYTES:
            self._write_pending()
