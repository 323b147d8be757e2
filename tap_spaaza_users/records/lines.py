"""The export's lines for the CSV parser: read and decoded in blocks, numbered, re-readable.

The CSV parser gets the file's lines one by one, but they are read, decoded and split in
blocks of about a megabyte, so no Python code runs per line. Each block's first line number
is known, which gives two things a text stream cannot:

- A line that is not valid UTF-8 is found and numbered exactly (a decoder's read-ahead makes
  the number drift), and can be left out, standing for an empty line, instead of ending the
  file.
- The lines after a bad record can be read again. An unclosed quote makes the parser join the
  lines after it into one record; once that record proves invalid, the parser starts again at
  the line after the quote's (``from_line``), so the quote costs its own line, not the rest
  of the file. The last few megabytes are kept for that.
"""

from __future__ import annotations

import io
from collections import deque
from itertools import chain
from typing import TYPE_CHECKING

from tap_spaaza_users.errors import SpaazaInvalidRowError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Bytes read and decoded at once.
BLOCK_BYTES = 1 << 20
#: How much text before the newest block is kept, to read a bad record's lines again.
RESYNC_CHARS = 2 << 20
BOM = b"\xef\xbb\xbf"
NUL_STAND_IN = "\ufdd0"  # a noncharacter, never in real text; swapped back after parsing


def count_lines(text: str) -> int:
    r"""How many lines the CSV parser sees in ``text`` (ends: ``\n``, ``\r\n``, ``\r``).

    A block without ``\r`` (the usual case: ``in`` finds none at memchr speed) costs one
    count, not three (about 0.15 CPU s for 300,000 users' file).
    """
    ends = text.count("\n")
    if "\r" in text:
        ends += text.count("\r") - text.count("\r\n")
    return ends + (1 if text and text[-1] not in "\r\n" else 0)


class ExportLines:
    """The lines of an export file, from a binary reader (plain, or gzip already undone).

    ``on_bad_line(line, text, reason)`` is called for a line that is not valid UTF-8, with
    the line decoded as far as possible; it raises to stop, or returns to leave the line out.
    With ``hide_nul`` (for csv modules that reject NUL) NUL_STAND_IN replaces each NUL.
    """

    def __init__(
        self,
        binary: io.BufferedIOBase,
        on_bad_line: Callable[[int, str, str], None],
        *,
        hide_nul: bool = False,
    ) -> None:
        """Read from ``binary``, at its first byte."""
        self._binary = binary
        self._hide_nul = hide_nul
        self._on_bad_line = on_bad_line
        #: (first line number, text) of the blocks kept, oldest first.
        self._kept: deque[tuple[int, str]] = deque()
        self._kept_chars = 0
        self._next_line = 1
        self._blocks = self._read_blocks()
        self._split: tuple[int, list[str]] = (0, [])  # a block split into lines, by first line

    def from_line(self, line: int) -> Iterator[str]:
        """The lines from ``line`` (1 is the header) to the end of the file.

        Raises:
            SpaazaInvalidRowError: When ``line`` is no longer kept (a quote left open for
                megabytes): the file cannot be read again from there.
        """
        if line >= self._next_line:
            return chain.from_iterable(self._blocks)
        tail = [lines[max(line - first, 0) :] for first, lines in self._kept_lines(line)]
        return chain(chain.from_iterable(tail), chain.from_iterable(self._blocks))

    def line_text(self, line: int) -> str:
        """The text of a line still kept, or empty."""
        try:
            for first, lines in self._kept_lines(line):
                return lines[line - first] if 0 <= line - first < len(lines) else ""
        except SpaazaInvalidRowError:
            pass
        return ""

    def _kept_lines(self, line: int) -> list[tuple[int, list[str]]]:
        """The kept blocks from the one holding ``line`` on, each as (first line, its lines).

        Raises:
            SpaazaInvalidRowError: When ``line`` is older than every block kept.
        """
        blocks = list(self._kept)
        if not blocks or line < blocks[0][0]:
            msg = f"line {line} is too far back to be read again"
            raise SpaazaInvalidRowError(msg)
        start = max(index for index, (first, _) in enumerate(blocks) if first <= line)
        return [(first, self._lines_of(first, text)) for first, text in blocks[start:]]

    def _lines_of(self, first: int, text: str) -> list[str]:
        """A kept block split into lines (the last one split is remembered)."""
        if self._split[0] != first:
            self._split = (first, io.StringIO(text, newline="").readlines())
        return self._split[1]

    def _read_blocks(self) -> Iterator[io.StringIO]:
        """Each block's lines, as the parser iterates them; the block is kept meanwhile."""
        read, rest, first = self._binary.read1, b"", True  # what has arrived, up to a block
        while True:
            data = read(BLOCK_BYTES)
            if data:
                data = rest + data
                cut = data.rfind(b"\n") + 1
                if not cut:
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
            elif rest:
                block, rest = rest, b""
            else:
                return
            if first:
                first = False
                block = block.removeprefix(BOM)
            text = self._decode(block)
            self._keep(text)
            yield io.StringIO(text, newline="")

    def _decode(self, block: bytes) -> str:
        """The block as text; a line that is not UTF-8 goes to ``on_bad_line``, then is empty."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            lines: list[str] = []
            for index, raw in enumerate(block.splitlines(keepends=True)):
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:  # noqa: PERF203 - only in a bad block
                    body = raw.rstrip(b"\r\n")
                    self._on_bad_line(
                        self._next_line + index, body.decode("utf-8", "replace"), exc.reason
                    )
                    lines.append(raw[len(body) :].decode("ascii"))
            text = "".join(lines)
        if self._hide_nul and "\x00" in text:
            text = text.replace("\x00", NUL_STAND_IN)
        return text

    def _keep(self, text: str) -> None:
        """Keep a block (numbered), forgetting old ones beyond ``RESYNC_CHARS``."""
        kept = self._kept
        kept.append((self._next_line, text))
        self._kept_chars += len(text)
        self._next_line += count_lines(text)
        while len(kept) > 1 and self._kept_chars - len(kept[0][1]) >= RESYNC_CHARS:
            self._kept_chars -= len(kept.popleft()[1])
