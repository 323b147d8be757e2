"""Each base user's CSV line, rendered once per sandbox and reused by every later export.

The lines are kept in UTF-8, as the export file holds them: an export of the default dialect
copies them as they are; a segment, another dialect or a fault reads a line back into its
values. The lines live in an anonymous temporary file
(in chunks of consecutive ids), so the sandbox's memory does not grow with its population.
"""

from __future__ import annotations

import csv
import marshal
import tempfile
import threading
from typing import IO, TYPE_CHECKING

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
        self._chunks: dict[int, tuple[int, int]] = {}  # chunk -> (offset, size) in the file
        self._lock = threading.Lock()
        #: Closed with its sandbox: an export still running then stores nothing more.
        self._closed = False

    def lines(self, first: int, last: int) -> Iterator[tuple[int, str]]:
        """Yield ``(id, line)`` of base users ``first..last`` in id order."""
        for user_id, line in self.encoded(first, last):
            yield user_id, line.decode()

    def encoded(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(id, UTF-8 line)`` of base users ``first..last`` in id order."""
        user_id = first
        while user_id <= last:
            chunk = (user_id - 1) // CHUNK_USERS
            chunk_first = chunk * CHUNK_USERS + 1
            chunk_last = min(chunk_first + CHUNK_USERS - 1, self._generator.count)
            stop = min(last, chunk_last)
            lines = self._load(chunk)
            if lines is None and (user_id, stop) == (chunk_first, chunk_last):
                lines = self._render(chunk_first, chunk_last)
                self._store(chunk, lines)
            if lines is None:  # part of a chunk not rendered yet: render only that part
                yield from enumerate(self._render(user_id, stop), start=user_id)
            else:
                part = lines[user_id - chunk_first : stop - chunk_first + 1]
                yield from enumerate(part, start=user_id)
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

    def _load(self, chunk: int) -> list[bytes] | None:
        """Return a stored chunk's lines, or None if it is not stored."""
        with self._lock:
            place = self._chunks.get(chunk)
            if place is None or self._file is None:
                return None
            self._file.seek(place[0])
            data = self._file.read(place[1])
        lines: list[bytes] = marshal.loads(data)  # noqa: S302 - written by this process
        return lines

    def _store(self, chunk: int, lines: list[bytes]) -> None:
        """Keep a chunk's lines (any storage error only means they are rendered again)."""
        data = marshal.dumps(lines)
        with self._lock:
            if chunk in self._chunks or self._closed:
                return
            try:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115
                offset = self._file.seek(0, 2)
                self._file.write(data)
                self._file.flush()
            except OSError:
                return
            self._chunks[chunk] = (offset, len(data))
