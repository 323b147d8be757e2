"""Turn the users export CSV into typed records, one converter per column built once per file."""

from __future__ import annotations

import contextlib
import csv
import sys
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import PRIMARY_KEY, REPLICATION_KEY, USER_COLUMNS, ColumnType
from tap_spaaza_users.errors import SpaazaInvalidRowError
from tap_spaaza_users.records.lines import NUL_STAND_IN as _NUL_STAND_IN
from tap_spaaza_users.records.lines import ExportLines
from tap_spaaza_users.records.source import open_export_bytes
from tap_spaaza_users.records.values import (
    CONVERSION_ERRORS,
    CONVERTERS,
    row_typer,
    to_boolean,
    to_date,
    to_date_time,
    to_decimal,
    to_integer,
)

__all__ = [
    "CONVERTERS",
    "UsersCsvReader",
    "to_boolean",
    "to_date",
    "to_date_time",
    "to_decimal",
    "to_integer",
]

if TYPE_CHECKING:
    import io
    import logging
    from collections.abc import Iterator
    from pathlib import Path
    from types import TracebackType

    from typing_extensions import Self

Record = dict[str, Any]

INVALID_ROW_ACTIONS = ("fail", "skip")
MAX_VALUE_IN_MESSAGE = 80
#: Bad lines in a row after which a file is beyond repair (a quote that joins lines costs a
#: few, one per line it joined at most).
MAX_LINES_WITHOUT_ROW = 100
#: Skipped rows whose lines are listed.
MAX_LISTED_LINES = 20
_NEEDS_NUL_WORKAROUND = sys.version_info < (3, 11)


def _typed(name: str) -> bool:
    """Whether a column's values are converted (known and not a string)."""
    return USER_COLUMNS.get(name, ColumnType.STRING) is not ColumnType.STRING


def _shorten(value: str) -> str:
    if len(value) <= MAX_VALUE_IN_MESSAGE:
        return repr(value)
    return repr(value[:MAX_VALUE_IN_MESSAGE]) + "... (%d characters)" % len(value)  # noqa: UP031


class UsersCsvReader:
    """Reads a users export file and yields typed records.

    Use as a context manager; iterate inside it. After entering, `columns`, `extra_columns` and
    `missing_columns` describe the file; while iterating, `rows` counts records emitted and
    `skipped_rows` the malformed rows skipped (with `on_invalid_row="skip"`), whose first lines
    are in `skipped_lines` and whose earliest ``created_date`` is `unvouched_from`.
    """

    def __init__(
        self,
        source: Path | io.BufferedReader,
        *,
        task_id: int,
        on_invalid_row: str = "fail",
        logger: logging.Logger,
    ) -> None:
        """Prepare to read `source`, the file of export task `task_id`.

        Args:
            source: The downloaded export file (plain or gzip), or a reader of it.
            task_id: The export task, named in errors.
            on_invalid_row: "fail" raises on the first malformed row; "skip" logs and counts it.
            logger: Where warnings go.

        Raises:
            ValueError: If `on_invalid_row` is not one of "fail", "skip".
        """
        if on_invalid_row not in INVALID_ROW_ACTIONS:
            msg = "on_invalid_row must be one of %s, not %r" % (INVALID_ROW_ACTIONS, on_invalid_row)  # noqa: UP031
            raise ValueError(msg)
        self.source = source
        self.task_id = task_id
        self.on_invalid_row = on_invalid_row
        self.logger = logger
        self.columns: list[str] = []
        self.extra_columns: list[str] = []
        self.missing_columns: list[str] = []
        self.rows = 0
        self.skipped_rows = 0
        #: The first line of each row skipped (the first MAX_LISTED_LINES of them).
        self.skipped_lines: list[int] = []
        #: The earliest ``created_date`` of a skipped row: None when none was skipped, ""
        #: when a skipped row's date could not be read (nothing in the file is vouched for).
        self.unvouched_from: str | None = None
        self._file: io.BufferedIOBase | None = None
        self._lines: ExportLines | None = None
        self._reader: Any = None
        self._base = 0  # the lines before the parser's first one (it restarts after a bad row)
        self._early_bad_lines: list[tuple[int, str]] = []

    def __enter__(self) -> Self:
        """Open the file and read its header."""
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        self._file = open_export_bytes(self.source, self.task_id)
        try:
            self._lines = ExportLines(self._file, self._bad_utf8, hide_nul=_NEEDS_NUL_WORKAROUND)
            self._reader = csv.reader(self._lines.from_line(1), strict=True)
            self._read_header()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the file."""
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _error(self, line: int, message: str) -> SpaazaInvalidRowError:
        return SpaazaInvalidRowError(
            "Export task %d, line %d: %s" % (self.task_id, line, message)  # noqa: UP031
        )

    def _bad_utf8(self, line: int, text: str, reason: str) -> None:
        """A line that is not UTF-8: fail (always in the header), or skip it."""
        why = f"the file is not valid UTF-8 at line {line} ({reason})"
        if line == 1 or self.on_invalid_row == "fail":
            msg = f"Export task {self.task_id}: {why}"
            if line > 1:
                msg += "; set on_invalid_row to skip to leave such rows out (each is counted)"
            raise SpaazaInvalidRowError(msg)
        if not self.columns:  # met while the header's block is decoded: after the header
            self._early_bad_lines.append((line, text))
            return
        self._fail_or_skip_row(line, "not valid UTF-8", text=text)

    def _read_header(self) -> None:
        try:
            header = next(self._reader)
        except StopIteration:
            raise self._error(1, "the file is empty (no header row)") from None
        except csv.Error as exc:
            raise self._error(1, f"unreadable header ({exc})") from None
        if _NEEDS_NUL_WORKAROUND:
            header = [name.replace(_NUL_STAND_IN, "\x00") for name in header]
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates or "" in header:
            raise self._error(1, "bad header: duplicate or empty column names %s" % duplicates)  # noqa: UP031
        if PRIMARY_KEY not in header:
            raise self._error(1, f"the header has no {PRIMARY_KEY!r} column (the primary key)")
        self.columns = header
        self.extra_columns = [name for name in header if name not in USER_COLUMNS]
        self.missing_columns = [name for name in USER_COLUMNS if name not in header]
        for name in self.extra_columns:
            self.logger.warning(
                "Export task %d: column %r is not a known users column; kept as a string",
                self.task_id,
                name,
            )
        for name in self.missing_columns:
            self.logger.warning(
                "Export task %d: column %r is missing from the file; emitted as null",
                self.task_id,
                name,
            )
        for line, text in self._early_bad_lines:
            self._fail_or_skip_row(line, "not valid UTF-8", text=text)

    def __iter__(self) -> Iterator[Record]:
        """Yield one typed record per data row.

        Raises:
            SpaazaInvalidRowError: On a malformed row when `on_invalid_row` is "fail".
        """
        if self._reader is None:
            msg = "UsersCsvReader must be entered (with ...) before iterating"
            raise RuntimeError(msg)
        return self._records()

    def _records(self) -> Iterator[Record]:
        """Type each well-formed row with a function built once for the header."""
        typed = row_typer(self.columns, self.missing_columns)
        for line, row in self._rows():
            try:
                record: Record | None = typed(row)
            except CONVERSION_ERRORS:
                record = self._retype(line, row)
            if record is None:
                continue
            if record[PRIMARY_KEY] is None:
                self._fail_or_skip_row(
                    line, f"column {PRIMARY_KEY!r} is empty (every user has an id)", row=row
                )
                continue
            self.rows += 1
            yield record

    def _retype(self, line: int, row: list[str]) -> Record | None:
        """Type a row the row typer rejected with the complete converters; None if invalid."""
        record: Record = {
            name: value or None
            for name, value in zip(self.columns, row, strict=True)
            if USER_COLUMNS.get(name, ColumnType.STRING) is ColumnType.STRING
        }
        for position, name in enumerate(self.columns):
            value = row[position]
            kind = USER_COLUMNS.get(name, ColumnType.STRING)
            if kind is ColumnType.STRING:
                continue
            if not value:
                record[name] = None
                continue
            try:
                record[name] = CONVERTERS[kind](value)
            except CONVERSION_ERRORS:
                why = f"column {name!r}: {_shorten(value)} is not a valid {kind.value}"
                self._fail_or_skip_row(line, why, row=row)
                return None
        record.update(dict.fromkeys(self.missing_columns))
        return record

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (first physical line, fields) of each data row with the header's field count.

        A bad record that spans several lines (an unclosed quote joins the lines after it)
        costs only its first line: the parser starts again on the next one. Past
        MAX_LINES_WITHOUT_ROW bad lines in a row, the file is beyond repair.
        """
        reader, base = self._reader, self._base
        width = len(self.columns)
        last_line = reader.line_num
        misses = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                first, end = base + last_line + 1, base + reader.line_num
                self._fail_or_skip_row(first, f"unreadable CSV ({exc})")
                misses += 1
                if end > first:
                    reader, base = self._restart(first + 1, misses)
                last_line = reader.line_num
                continue
            line = last_line + 1
            last_line = reader.line_num
            if len(row) != width:
                if row:  # blank lines are not rows
                    self._fail_or_skip_row(
                        base + line, f"expected {width} fields, found {len(row)}"
                    )
                    misses += 1
                    if last_line > line:
                        reader, base = self._restart(base + line + 1, misses)
                        last_line = 0
                continue
            if _NEEDS_NUL_WORKAROUND:
                row = [value.replace(_NUL_STAND_IN, "\x00") for value in row]
            misses = 0
            yield base + line, row

    def _restart(self, line: int, misses: int) -> tuple[Any, int]:
        """A new parser from ``line``, after a bad record that joined the lines after it.

        Raises:
            SpaazaInvalidRowError: When ``misses`` bad lines came in a row, or the line is no
                longer kept: no row can be trusted from there on.
        """
        if misses > MAX_LINES_WITHOUT_ROW or self._lines is None:
            raise self._unreadable_from(line - misses)
        try:
            self._reader = csv.reader(self._lines.from_line(line), strict=True)
        except SpaazaInvalidRowError:
            raise self._unreadable_from(line - 1) from None
        self._base = line - 1
        return self._reader, self._base

    def _unreadable_from(self, line: int) -> SpaazaInvalidRowError:
        return self._error(
            line,
            "the CSV cannot be read from here on (an unclosed quote or a broken file): "
            "no row after it can be trusted, so nothing of this file is kept; fix the export "
            "or tell Spaaza",
        )

    def _fail_or_skip_row(
        self, line: int, message: str, *, row: list[str] | None = None, text: str | None = None
    ) -> None:
        """Raise for an invalid row (on_invalid_row fail), or log and count it (skip).

        A skipped row's ``created_date`` (from its fields, or its line's text) joins
        ``unvouched_from``; when it cannot be read, nothing in the file is vouched for.
        """
        error = self._error(line, message)
        if self.on_invalid_row == "fail":
            msg = f"{error}; set on_invalid_row to skip to leave such rows out (each is counted)"
            raise SpaazaInvalidRowError(msg)
        self.skipped_rows += 1
        if len(self.skipped_lines) < MAX_LISTED_LINES:
            self.skipped_lines.append(line)
        self.logger.warning("%s; row skipped", error)
        created = self._created_date_of(row, line, text)
        if self.unvouched_from is None or created < self.unvouched_from:
            self.unvouched_from = created

    def _created_date_of(self, row: list[str] | None, line: int, text: str | None) -> str:
        """A bad row's ``created_date`` as records carry it, or "" when it cannot be read."""
        if REPLICATION_KEY not in self.columns:
            return ""
        width, position = len(self.columns), self.columns.index(REPLICATION_KEY)
        candidates = [row] if row is not None else []
        if text is None and self._lines is not None:
            text = self._lines.line_text(line)
        if text:
            with contextlib.suppress(csv.Error):
                candidates.append(next(csv.reader([text]), []))
            candidates.append(text.rstrip("\r\n").split(","))
        for fields in candidates:
            if len(fields) == width:
                try:
                    return to_date_time(fields[position]) if fields[position] else ""
                except CONVERSION_ERRORS:
                    return ""
        return ""
