"""A fast Singer writer: msgspec JSON into a buffer, flushed around every STATE message."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import sys
import weakref
from typing import TYPE_CHECKING, Any

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.messages import Message, RecordMessage, StateMessage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Buffered output is written once it reaches this size (and always around a STATE message).
FLUSH_BYTES = 1 << 20
_WRITERS: weakref.WeakSet[BufferedSingerWriter] = weakref.WeakSet()


def _encode_other(value: object) -> object:
    """Encode what msgspec does not know natively: dates as ISO 8601, the rest as text."""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def json_encoder() -> msgspec.json.Encoder:
    """A msgspec JSON encoder writing Decimal as a JSON number with every digit.

    Returns:
        The encoder.
    """
    return msgspec.json.Encoder(enc_hook=_encode_other, decimal_format="number")


class BufferedSingerWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages as JSON lines to standard output, buffering RECORD messages.

    Records are encoded with msgspec (Decimal as a JSON number with every digit) into a
    buffer written when it is full. Any other message (SCHEMA, STATE, BATCH, ...) first
    writes out what is buffered, then itself, then flushes standard output: a STATE
    always follows the records it covers and is never held back.
    """

    def __init__(self) -> None:
        """Create the encoder and an empty buffer."""
        self._encoder = json_encoder()
        self._buffer = bytearray()
        #: Called before a STATE message is written (BATCH output completes its files there).
        self.before_state: Callable[[], None] | None = None
        _WRITERS.add(self)

    def serialize_message(self, message: Message) -> bytes:
        """Serialize a message as one JSON line.

        Args:
            message: A Singer message.

        Returns:
            The JSON line, newline included.
        """
        return self._encoder.encode(message.to_dict()) + b"\n"

    def write_message(self, message: Message) -> None:
        """Buffer a RECORD; write out anything else at once, after the buffered records.

        Args:
            message: A Singer message.
        """
        if isinstance(message, RecordMessage):
            self._encoder.encode_into(message.to_dict(), self._buffer, -1)
            self._buffer += b"\n"
            if len(self._buffer) >= FLUSH_BYTES:
                self._write_out()
            return
        if self.before_state is not None and isinstance(message, StateMessage):
            self.before_state()
        self._buffer += self.serialize_message(message)
        self.flush()

    def flush(self) -> None:
        """Write out the buffered messages and flush standard output."""
        self._write_out()
        sys.stdout.flush()

    def _write_out(self) -> None:
        """Hand the buffer to standard output (bytes when it has a binary layer)."""
        if not self._buffer:
            return
        stdout: Any = sys.stdout
        binary = getattr(stdout, "buffer", None)
        if binary is not None:
            stdout.flush()  # keep order with anything written as text
            binary.write(self._buffer)
        else:
            stdout.write(self._buffer.decode("utf-8"))
        self._buffer.clear()


@contextlib.contextmanager
def flushed(writer: object) -> Iterator[None]:
    """Write out buffered records when the block ends, however it ends (an error, a limit).

    Args:
        writer: The tap's message writer (only a ``BufferedSingerWriter`` buffers).

    Yields:
        Nothing.
    """
    try:
        yield
    finally:
        if isinstance(writer, BufferedSingerWriter):
            writer.flush()


@atexit.register
def _flush_writers() -> None:
    """At exit (a failed sync included), write out records still buffered."""
    with contextlib.suppress(OSError, ValueError):  # standard output already closed
        for writer in list(_WRITERS):
            writer.flush()
