"""Turn the users export CSV into typed records, one converter per column built once per file."""

from __future__ import annotations

import csv
import gzip
import io
import math
import sys
import zlib
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tap_spaaza_users.contract import GZIP_MAGIC, PRIMARY_KEY, USER_COLUMNS, ColumnType
from tap_spaaza_users.errors import SpaazaCorruptExportError, SpaazaInvalidRowError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator
    from types import TracebackType

    from typing_extensions import Self

Record = dict[str, Any]

INVALID_ROW_ACTIONS = ("fail", "skip")
MAX_VALUE_IN_MESSAGE = 80
_CONVERSION_ERRORS = (ValueError, KeyError, TypeError, ArithmeticError)
_NEEDS_NUL_WORKAROUND = sys.version_info < (3, 11)
_NUL_STAND_IN = "\ufdd0"  # a noncharacter, never in real text; swapped back after parsing

_BOOLEANS: dict[str, bool] = {}
for _word, _value in {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}.items():
    for _spelling in {_word, _word.upper(), _word.capitalize()}:
        _BOOLEANS[_spelling] = _value


def to_boolean(value: str) -> bool:
    """Type a boolean cell: true/false, 1/0, yes/no in any case."""
    try:
        return _BOOLEANS[value]
    except KeyError:
        word = value.lower()
        if word in _BOOLEANS:
            return _BOOLEANS[word]
        raise


def to_integer(value: str) -> int:
    """Type an integer cell: ASCII digits with an optional sign (no ``1_000``, no ``١٢``)."""
    if "_" in value or not value.isascii():
        raise ValueError(value)
    return int(value)


def to_decimal(value: str) -> Decimal:
    """Type a decimal cell keeping every digit.

    Like integers, only ASCII digits without ``_``. NaN, infinities and numbers beyond a
    double's range (``1e999999``, which JSON readers would turn into infinity, or
    ``1e-999999`` into 0) are rejected.
    """
    if "_" in value or not value.isascii():
        raise ValueError(value)
    number = Decimal(value)
    if number.is_finite():
        as_double = float(number)
        if math.isfinite(as_double) and (as_double or not number):
            return number
    raise InvalidOperation(value)


def to_date(value: str) -> str:
    """Type a date cell as YYYY-MM-DD."""
    if len(value) == 10 and value[4:8:3] == "--":  # noqa: PLR2004 - the file's own format
        _date_from_iso(value)  # validates
        return value
    return _date_from_iso(value).isoformat()


def to_date_time(value: str) -> str:
    """Type a date-time cell as RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS+00:00`).

    The file's own format (`YYYY-MM-DD HH:MM:SS`, UTC) takes a fast path; ISO 8601 with `T`
    and `Z` or an offset is converted to UTC. Fractional seconds are kept when present.
    """
    if len(value) == 19 and value[4:17:3] in _PLAIN_DATE_TIME_MARKS:  # noqa: PLR2004
        _date_time_from_iso(value)  # validates
        return value.replace(" ", "T") + "+00:00"
    if len(value) < 16 or value[10] not in " Tt":  # noqa: PLR2004 - a date-time, not a date
        raise ValueError(value)
    parsed = _date_time_from_iso(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc).isoformat()
    return parsed.astimezone(timezone.utc).isoformat()


_date_from_iso = date.fromisoformat
_date_time_from_iso = datetime.fromisoformat
_PLAIN_DATE_TIME_MARKS = ("-- ::", "--T::")  # characters 4, 7, 10, 13 and 16

#: How each non-string column type is converted (values are never empty here).
CONVERTERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.INTEGER: to_integer,
    ColumnType.BOOLEAN: to_boolean,
    ColumnType.DECIMAL: to_decimal,
    ColumnType.DATE: to_date,
    ColumnType.DATE_TIME: to_date_time,
}
#: The same, tuned for the common spellings; a row they reject is retried with CONVERTERS.
FAST_CONVERTERS: dict[ColumnType, Callable[[str], Any]] = CONVERTERS | {
    ColumnType.BOOLEAN: _BOOLEANS.__getitem__,
}


def open_export_text(source: Path | io.BufferedReader, task_id: int | None = None) -> IO[str]:
    """Open the export as text: gzip detected by magic bytes, UTF-8 with the BOM stripped.

    Args:
        source: The file, or a reader of it (such as a spool's) at its first byte.
        task_id: The export task, named when its gzip stream turns out broken.

    Returns:
        The text; a broken gzip stream raises SpaazaCorruptExportError while reading.
    """
    binary: io.BufferedReader = source.open("rb") if isinstance(source, Path) else source
    if binary.peek(2)[:2] != GZIP_MAGIC:
        return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(_CheckedGzip(binary, task_id), encoding="utf-8-sig", newline="")


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class _CheckedGzip(gzip.GzipFile):
    """A gzip reader whose broken stream (truncated, bad CRC) is one clear error, not a trace."""

    def __init__(self, binary: io.BufferedReader, task_id: int | None) -> None:
        super().__init__(fileobj=binary, mode="rb")
        self._binary = binary
        self._task_id = task_id

    def _broken(self, exc: Exception) -> SpaazaCorruptExportError:
        task = f"Export task {self._task_id}" if self._task_id is not None else "The export"
        why = "it ends early" if isinstance(exc, EOFError) else str(exc)
        return SpaazaCorruptExportError(f"{task}: the gzip file is corrupt ({why})")

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except _GZIP_ERRORS as exc:
            raise self._broken(exc) from None

    def read1(self, size: int = -1) -> bytes:
        try:
            return super().read1(size)
        except _GZIP_ERRORS as exc:
            raise self._broken(exc) from None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._binary.close()


def _without_nul(lines: Iterator[str]) -> Iterator[str]:
    """Hide NUL from old csv modules that reject it (restored in the parsed values)."""
    for line in lines:
        yield line.replace("\x00", _NUL_STAND_IN) if "\x00" in line else line


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
    `skipped_rows` the malformed rows skipped (with `on_invalid_row="skip"`).
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
        self._file: IO[str] | None = None
        self._reader: Any = None

    def __enter__(self) -> Self:
        """Open the file and read its header."""
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        self._file = open_export_text(self.source, self.task_id)
        try:
            lines: Iterator[str] = iter(self._file)
            if _NEEDS_NUL_WORKAROUND:
                lines = _without_nul(lines)
            self._reader = csv.reader(lines, strict=True)
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

    def _not_utf8(self, exc: UnicodeDecodeError) -> SpaazaInvalidRowError:
        line = self._reader.line_num + 1
        why = f"the file is not valid UTF-8 near line {line} ({exc.reason})"
        return SpaazaInvalidRowError(f"Export task {self.task_id}: {why}")

    def _read_header(self) -> None:
        try:
            header = next(self._reader)
        except StopIteration:
            raise self._error(1, "the file is empty (no header row)") from None
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from None
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
        """Type each well-formed row with converters chosen once, by column position."""
        strings = [
            (position, name) for position, name in enumerate(self.columns) if not _typed(name)
        ]
        typed = [
            (position, name, FAST_CONVERTERS[USER_COLUMNS[name]])
            for position, name in enumerate(self.columns)
            if _typed(name)
        ]
        missing = dict.fromkeys(self.missing_columns)
        for line, row in self._rows():
            record = {name: row[position] or None for position, name in strings}
            try:
                for position, name, convert in typed:
                    value = row[position]
                    record[name] = convert(value) if value else None
            except _CONVERSION_ERRORS:
                if not self._retype(line, row, record):
                    continue
            if record[PRIMARY_KEY] is None:
                self._fail_or_skip_row(
                    line, f"column {PRIMARY_KEY!r} is empty (every user has an id)"
                )
                continue
            if missing:
                record.update(missing)
            self.rows += 1
            yield record

    def _retype(self, line: int, row: list[str], record: Record) -> bool:
        """Convert a row the fast converters rejected with the complete ones; False if invalid."""
        for position, name in enumerate(self.columns):
            value = row[position]
            if value and _typed(name):
                kind = USER_COLUMNS[name]
                try:
                    record[name] = CONVERTERS[kind](value)
                except _CONVERSION_ERRORS:
                    why = f"column {name!r}: {_shorten(value)} is not a valid {kind.value}"
                    self._fail_or_skip_row(line, why)
                    return False
        return True

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """Yield (first physical line, fields) of each data row with the header's field count."""
        reader = self._reader
        width = len(self.columns)
        last_line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise self._not_utf8(exc) from None
            except csv.Error as exc:
                self._fail_or_skip_row(last_line + 1, f"unreadable CSV ({exc})")
                last_line = reader.line_num
                continue
            line = last_line + 1
            last_line = reader.line_num
            if len(row) != width:
                if row:  # blank lines are not rows
                    self._fail_or_skip_row(line, f"expected {width} fields, found {len(row)}")
                continue
            if _NEEDS_NUL_WORKAROUND:
                row = [value.replace(_NUL_STAND_IN, "\x00") for value in row]
            yield line, row

    def _fail_or_skip_row(self, line: int, message: str) -> None:
        """Raise for an invalid row (on_invalid_row fail), or log and count it (skip)."""
        error = self._error(line, message)
        if self.on_invalid_row == "fail":
            msg = f"{error}; set on_invalid_row to skip to leave such rows out (each is counted)"
            raise SpaazaInvalidRowError(msg)
        self.skipped_rows += 1
        self.logger.warning("%s; row skipped", error)
