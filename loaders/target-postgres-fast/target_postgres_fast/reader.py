"""Singer messages read from stdin in blocks and decoded many lines per msgspec call.

The SDK's msgspec reader iterates stdin as text: one ``readline``, one UTF-8 decode and one
msgspec call per line. Here the bytes are read as they arrive (never waiting for a full
block), cut at the last newline, and every complete line of the block is decoded by one
``decode_lines`` call with the SDK's own decoder (same numbers, same hooks). The messages are
then handed to the same callbacks, one at a time, in order.

A block that does not decode into exactly one message per line (a malformed or blank line)
goes through the SDK's per-line path, which processes the lines before the first bad one and
then raises the SDK's own error for it.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder

if TYPE_CHECKING:
    from collections.abc import Callable

#: The most bytes taken from stdin at once (what is already there, up to this).
BLOCK_BYTES = 1 << 20


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
        source = sys.stdin.buffer
        pending = b""
        while block := source.read1(BLOCK_BYTES):
            if pending:
                block = pending + block
            end = block.rfind(b"\n") + 1
            pending = block[end:]
            if end:
                self._process_block(block[:end], callbacks, stats)
        if pending:
            self._process_block(pending, callbacks, stats)
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
            messages = (self.deserialize_json(line) for line in text)
        for message in messages:
            self.assert_line_requires(message, requires={"type"})
            message_type = message["type"]
            if callback := callbacks.get(message_type):
                callback(message)
            else:
                self._process_unknown_message(message)
            stats[message_type] += 1
