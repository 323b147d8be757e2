"""Singer messages read from stdin in blocks and decoded many lines per msgspec call.

The SDK's msgspec reader iterates stdin as text: one ``readline``, one UTF-8 decode and one
msgspec call per line. Here the bytes are read as they arrive (never waiting for a full
block), cut at the last newline, and every complete line of the block is decoded by one
``decode_lines`` call with the SDK's own decoder (same numbers, same hooks). The messages are
then handed to the same callbacks, one at a time, in order.

A block that does not decode into exactly one message per line (a malformed or blank line)
goes through the SDK's per-line path, which processes the lines before the first bad one and
then raises the SDK's own error for it.

A target with a ``stage_run(messages, start)`` method (the one whose ``RECORD`` callback is
bound to it) is handed each RECORD of a decoded block with the rest of the block: it stages
as many consecutive messages from there as it can and says how many (0: the message takes
the callback).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: The most bytes taken from stdin at once (what is already there, up to this).
BLOCK_BYTES = 1 << 20
#: What a pipe on stdin is asked to hold (Linux allows an unprivileged process 1 MB).
PIPE_BYTES = 1 << 20


class BlockMsgSpecReader(MsgSpecReader):
    """MsgSpecReader that decodes whole blocks of stdin's lines at once."""

    def process_lines(
        self,
        file_input: IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> Counter[str]:
        """Process every message of stdin (or of ``file_input``, line by line, as the SDK).

        Returns:
            How many messages of each type were processed.
        """
        if file_input is not None:
            return super().process_lines(file_input, callbacks)
        stats: Counter[str] = Counter()
        target = getattr(callbacks.get("RECORD"), "__self__", None)
        self._stage_run: Callable[[list[dict[str, Any]], int], int] | None = getattr(
            target, "stage_run", None
        )
        widen_pipe(sys.stdin.buffer)
        for block in whole_line_blocks(sys.stdin.buffer.read1, BLOCK_BYTES):
            self._process_block(block, callbacks, stats)
        return stats

    def _process_block(
        self,
        block: bytes,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
    ) -> None:
        """Decode a block of whole lines at once, then process its messages in order.

        ``decode_lines`` skips blank lines and accepts two values on one line, which the
        SDK rejects: unless it returns exactly one message per line, the block goes through
        the SDK's own path, which decodes and processes one line at a time.
        """
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        try:
            messages = decoder.decode_lines(block)
        except msgspec.DecodeError:
            messages = None
        if messages is None or len(messages) != lines:
            text = io.TextIOWrapper(io.BytesIO(block), encoding="utf-8")
            self._process_messages((self.deserialize_json(line) for line in text), callbacks, stats)
            return
        stage_run = self._stage_run
        if stage_run is None:
            self._process_messages(messages, callbacks, stats)
            return
        index, end = 0, len(messages)
        while index < end:
            message = messages[index]
            if message.get("type") == "RECORD" and (staged := stage_run(messages, index)):
                stats["RECORD"] += staged
                index += staged
                continue
            self._process_messages((message,), callbacks, stats)
            index += 1

    def _process_messages(
        self,
        messages: Iterable[dict[str, Any]],
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
    ) -> None:
        """Process messages one at a time, as the SDK's reader does."""
        for message in messages:
            self.assert_line_requires(message, requires={"type"})
            message_type = message["type"]
            if callback := callbacks.get(message_type):
                callback(message)
            else:
                self._process_unknown_message(message)
            stats[message_type] += 1


def widen_pipe(stream: IO[bytes]) -> None:
    """Let a pipe on ``stream`` hold ``PIPE_BYTES`` (Linux), else leave it as it is.

    A pipe holds 64 kB by default: a writer that relays one line per write (Meltano) then
    waits for the reader every 64 kB, and the reader gets at most 64 kB a read. A larger pipe
    lets both run longer without waking each other; the bytes and their order are the same.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    # Not a pipe, or more than the system allows: the pipe stays as it is.
    with contextlib.suppress(OSError, ValueError):
        fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)


def whole_line_blocks(read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """Blocks of whole lines from ``read`` (``size`` bytes a call); the last may lack a newline."""
    pending = b""
    while block := read(size):
        if pending:
            block = pending + block
        end = block.rfind(b"\n") + 1
        pending = block[end:]
        if end:
            yield block[:end]
    if pending:
        yield pending
