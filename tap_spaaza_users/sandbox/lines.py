"""Each base user's CSV line, rendered once per sandbox and reused by every later export.

The lines are kept in UTF-8, as the export file holds them: an export of the default dialect
copies them as they are, a block of consecutive users at a time; a segment, another dialect
or a fault reads a line back into its values. The lines live in an anonymous temporary file
(in chunks of consecutive ids, each joined, with its lines' lengths), so the sandbox's memory
does not grow with its population.
"""

from __future__ import annotations

import csv
import tempfile
import threading
from array import array
from typing import IO, TYPE_CHECKING, NamedTuple

from tap_spaaza_users.sandbox.base_lines import BaseLines
from tap_spaaza_users.sandbox.generator import COLUMNS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox.generator import UserGenerator

#: One user on the way to the export file: a base user's line as the default dialect writes it
#: (UTF-8, LF-terminated, columns in contract order), or the values of a changed or added user.
ExportRow = bytes | dict[str, str]

#: Consecutive base users rendered and stored together.
CHUNK_USERS = 4096
#: The array type of the lines' lengths in a block (unsigned long: at least 32 bits).
_LENGTHS = "L"


class LineBlock(NamedTuple):
    """The lines of consecutive base users, joined as the default dialect writes them."""

    first: int  # the first line's user id
    data: bytes  # the lines, UTF-8, one after the other
    lengths: array[int]  # each line's length in bytes

    @classmethod
    def of(cls, first: int, lines: list[bytes]) -> LineBlock:
        """Return the block of ``lines``, the first being user ``first``'s."""
        return cls(first, b"".join(lines), array(_LENGTHS, map(len, lines)))

    @property
    def last(self) -> int:
        """Return the last line's user id."""
        return self.first + len(self.lengths) - 1

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(id, UTF-8 line)`` of each user in the block."""
        data, start = self.data, 0
        for user_id, length in enumerate(self.lengths, start=self.first):
            end = start + length
            yield user_id, data[start:end]
            start = end

    def part(self, first: int, last: int) -> LineBlock:
        """Return the block of users ``first..last`` (within this block)."""
        skip, keep = first - self.first, last - first + 1
        start = sum(self.lengths[:skip])
        lengths = self.lengths[skip : skip + keep]
        return LineBlock(first, self.data[start : start + sum(lengths)], lengths)


def as_values(row: ExportRow | str) -> dict[str, str]:
    """Return a row's values by column (reading a rendered line, encoded or not, back)."""
    if isinstance(row, dict):
        return row
    line = row.decode() if isinstance(row, bytes) else row
    return dict(zip(COLUMNS, next(csv.reader([line])), strict=True))


def render_lines(rows: Iterator[list[str]]) -> list[str]:
    """Return each row's line exactly as ``csv.writer`` writes it with an LF terminator."""
    lines: list[str] = []
    writer = csv.writer(_Sink(lines.append), lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return lines


class _Sink:
    """A file-like object whose ``write`` keeps each line ``csv.writer`` hands it."""

    def __init__(self, write: Callable[[str], object]) -> None:
        """Hand each line to ``write``."""
        self.write = write


class RenderedLines:
    """The base users' default-dialect lines, rendered on first use and kept on disk."""

    def __init__(self, generator: UserGenerator, directory: Path | None = None) -> None:
        """Render the users of ``generator``; keep the file in ``directory`` (default: temp)."""
        self._generator = generator
        self._base_lines: BaseLines | None = None  # made on the first render
        self._directory = directory
        self._file: IO[bytes] | None = None
        #: chunk -> (offset, size of its lines, number of lines) in the file
        self._chunks: dict[int, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        #: Closed with its sandbox: an export still running then stores nothing more.
        self._closed = False

    def lines(self, first: int, last: int) -> Iterator[tuple[int, str]]:
        """Yield ``(id, line)`` of base users ``first..last`` in id order."""
        for user_id, line in self.encoded(first, last):
            yield user_id, line.decode()

    def encoded(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(id, UTF-8 line)`` of base users ``first..last`` in id order."""
        for block in self.blocks(first, last):
            yield from block.lines()

    def blocks(self, first: int, last: int) -> Iterator[LineBlock]:
        """Yield the lines of base users ``first..last`` in id order, a block per chunk."""
        user_id = first
        while user_id <= last:
            chunk = (user_id - 1) // CHUNK_USERS
            chunk_first = chunk * CHUNK_USERS + 1
            chunk_last = min(chunk_first + CHUNK_USERS - 1, self._generator.count)
            stop = min(last, chunk_last)
            block = self._load(chunk)
            if block is None and (user_id, stop) == (chunk_first, chunk_last):
                block = LineBlock.of(chunk_first, self._render(chunk_first, chunk_last))
                self._store(chunk, block)
            if block is None:  # part of a chunk not rendered yet: render only that part
                block = LineBlock.of(user_id, self._render(user_id, stop))
            elif (user_id, stop) != (chunk_first, chunk_last):
                block = block.part(user_id, stop)
            yield block
            user_id = stop + 1

    def close(self) -> None:
        """Delete the stored lines (they are rendered again if needed)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = None
            self._chunks.clear()
            self._closed = True

    def _render(self, first: int, last: int) -> list[bytes]:
        """Generate and render base users ``first..last``."""
        if self._base_lines is None:
            self._base_lines = BaseLines(self._generator)
        return self._base_lines.render(first, last)

    def _load(self, chunk: int) -> LineBlock | None:
        """Return a stored chunk's lines, or None if it is not stored."""
        lengths = array(_LENGTHS)
        with self._lock:
            place = self._chunks.get(chunk)
            if place is None or self._file is None:
                return None
            offset, size, count = place
            self._file.seek(offset)
            data = self._file.read(size)
            lengths.frombytes(self._file.read(count * lengths.itemsize))
        return LineBlock(chunk * CHUNK_USERS + 1, data, lengths)

    def _store(self, chunk: int, block: LineBlock) -> None:
        """Keep a chunk's lines (any storage error only means they are rendered again)."""
        with self._lock:
            if chunk in self._chunks or self._closed:
                return
            try:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115
                offset = self._file.seek(0, 2)
                self._file.write(block.data)
                self._file.write(block.lengths.tobytes())
                self._file.flush()
            except OSError:
                return
            self._chunks[chunk] = (offset, len(block.data), len(block.lengths))
