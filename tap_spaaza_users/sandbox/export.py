"""Writing an export file: CSV dialect variants, malformed and repeated rows, gzip, to disk."""

from __future__ import annotations

import bisect
import csv
import gzip
import random
import sys
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType, parse_utc
from tap_spaaza_users.sandbox.generator import COLUMNS, TIERS
from tap_spaaza_users.sandbox.lines import LineBlock, as_values

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox.lines import ExportRow

BOOLEANS = {
    "true_false": ("true", "false"),
    "1_0": ("1", "0"),
    "True_False": ("True", "False"),
    "yes_no": ("yes", "no"),
}
_DATETIME_LENGTH = len("YYYY-MM-DD HH:MM:SS")
DATETIMES = ("space", "iso_z", "iso_offset")
COLUMN_ORDERS = ("default", "shuffled")
#: Rendered lines gathered before one write to the file.
_BLOCK_LINES = 512
_BAD_VALUES = {
    ColumnType.INTEGER: "not-a-number",
    ColumnType.DECIMAL: "twelve",
    ColumnType.BOOLEAN: "maybe",
    ColumnType.DATE: "2024-13-45",
    ColumnType.DATE_TIME: "yesterday",
}


@dataclass
class CsvDialect:
    """How the export file is written (the tolerated variants of the contract)."""

    bom: bool = False
    crlf: bool = False
    booleans: str = "true_false"
    datetimes: str = "space"
    column_order: str = "default"
    extra_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Validate the options.

        Raises:
            ValueError: an option has no such variant.
        """
        checks = (
            (self.booleans in BOOLEANS, f"booleans must be one of {sorted(BOOLEANS)}"),
            (self.datetimes in DATETIMES, f"datetimes must be one of {list(DATETIMES)}"),
            (self.column_order in COLUMN_ORDERS, f"column_order must be one of {COLUMN_ORDERS}"),
            (set(self.missing_columns) <= set(COLUMNS), "missing_columns must be known columns"),
            (not set(self.extra_columns) & set(COLUMNS), "extra_columns must be new columns"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def describe(self) -> dict[str, Any]:
        """Return the dialect as JSON."""
        return asdict(self)

    def header(self, seed: int) -> list[str]:
        """Return the file's columns, in file order."""
        names = [c for c in COLUMNS if c not in self.missing_columns] + list(self.extra_columns)
        if self.column_order == "shuffled":
            random.Random(seed).shuffle(names)  # noqa: S311 - a reproducible shuffle
        return names

    def writes_lines_as_rendered(self, header: list[str]) -> bool:
        """Return whether this dialect writes ``header``'s rows as ``lines`` renders them."""
        default = (self.booleans, self.datetimes) == ("true_false", "space")
        return default and not self.crlf and header == list(COLUMNS)

    def render(self, row: dict[str, str], header: list[str]) -> list[str]:
        """Return one row's cells for ``header``, in this dialect."""
        return [self._cell(name, row) for name in header]

    def _cell(self, name: str, row: dict[str, str]) -> str:
        """Render one cell."""
        kind = USER_COLUMNS.get(name)
        if kind is None:
            return "extra %s %s" % (name, row["id"])  # noqa: UP031
        value = row.get(name, "")
        if not value:
            return value
        if kind is ColumnType.BOOLEAN and self.booleans != "true_false":
            true, false = BOOLEANS[self.booleans]
            return true if value == "true" else false if value == "false" else value
        if (
            kind is ColumnType.DATE_TIME
            and self.datetimes != "space"
            and len(value) == _DATETIME_LENGTH
        ):
            suffix = "Z" if self.datetimes == "iso_z" else "+00:00"
            return value.replace(" ", "T", 1) + suffix
        return value


@dataclass(frozen=True)
class ExportOptions:
    """Everything about one export file besides its rows."""

    dialect: CsvDialect
    seed: int
    gzip: bool = False
    malformed_rows: tuple[int, ...] = ()
    malformed_problem: str = "field_count"
    malformed_column: str = "overall"
    #: how many of the first users are repeated at the end of the file with newer values
    duplicates: int = 0
    newer_by_seconds: float = 3600.0


def write_export(path: Path, rows: Iterable[ExportRow | LineBlock], options: ExportOptions) -> int:
    """Stream ``rows`` into the export file at ``path``; return how many rows were written.

    A rendered line goes into the file as it is when the dialect writes it unchanged (the
    default dialect, columns in contract order), and so does a whole block of them that no
    fault touches; any other row is rendered cell by cell.
    """
    # mtime 0: the same export gives the same bytes (and ETag) on every run
    with gzip.GzipFile(path, "wb", mtime=0) if options.gzip else path.open("wb") as raw:
        text = _Text(raw)
        if options.dialect.bom:
            text.write("\ufeff")
        terminator = "\r\n" if options.dialect.crlf else "\n"
        writer = csv.writer(text, lineterminator=terminator)
        header = options.dialect.header(options.seed)
        writer.writerow(header)
        as_is = options.dialect.writes_lines_as_rendered(header)
        malformed = frozenset(options.malformed_rows)
        count = 0
        repeated: list[dict[str, str]] = []
        rendered = _Rendered(raw, text)
        for row in _whole_blocks(rows, options) if as_is else _lines(rows):
            if isinstance(row, LineBlock):
                rendered.write_block(row.data)
                count += len(row.lengths)
                continue
            count += 1
            if as_is and isinstance(row, bytes) and count not in malformed:
                rendered.write(row)
            else:
                rendered.flush()
                cells = options.dialect.render(as_values(row), header)
                if count in malformed:
                    cells = _malform(cells, header, options)
                _write_row(text, writer, cells, terminator)
            if count <= options.duplicates:
                repeated.append(as_values(row))
        text.flush()
        rendered.flush()
        for values in repeated:
            newer = newer_copy(values, options.newer_by_seconds)
            _write_row(text, writer, options.dialect.render(newer, header), terminator)
        text.flush()
    return count + len(repeated)


def _whole_blocks(
    items: Iterable[ExportRow | LineBlock], options: ExportOptions
) -> Iterator[ExportRow | LineBlock]:
    """Yield the items, a block split into its lines where a malformed or repeated row falls."""
    malformed = sorted(options.malformed_rows)
    count = 0
    for item in items:
        if not isinstance(item, LineBlock):
            count += 1
            yield item
            continue
        first = count + 1
        count += len(item.lengths)
        after = bisect.bisect_left(malformed, first)
        if first > options.duplicates and (after == len(malformed) or malformed[after] > count):
            yield item
        else:
            yield from (line for _, line in item.lines())


def _lines(items: Iterable[ExportRow | LineBlock]) -> Iterator[ExportRow]:
    """Yield the items, each block as its lines."""
    for item in items:
        if isinstance(item, LineBlock):
            yield from (line for _, line in item.lines())
        else:
            yield item


class _Bytes(Protocol):
    """Where the export's bytes go (the file, or its gzip stream)."""

    def write(self, data: bytes, /) -> object:
        """Write ``data``."""


class _Text:
    """The export file's text (header, rows rendered cell by cell), encoded to UTF-8 in blocks."""

    def __init__(self, raw: _Bytes) -> None:
        """Write into ``raw``."""
        self._raw = raw
        #: text not yet in the file: it goes before any rendered line written after it
        self.pending: list[str] = []

    def write(self, text: str) -> None:
        """Take ``text`` (``csv.writer`` calls this once per row)."""
        self.pending.append(text)
        if len(self.pending) >= _BLOCK_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the pending text into the file."""
        self._raw.write("".join(self.pending).encode("utf-8"))
        self.pending.clear()


class _Rendered:
    """Rendered lines on their way to the file, written in blocks after any text before them."""

    def __init__(self, raw: _Bytes, text: _Text) -> None:
        """Write into ``raw``, after what ``text`` holds."""
        self._raw, self._text = raw, text
        self._pending: list[bytes] = []

    def write(self, line: bytes) -> None:
        """Take one rendered line."""
        if self._text.pending:
            self._text.flush()
        self._pending.append(line)
        if len(self._pending) >= _BLOCK_LINES:
            self.flush()

    def write_block(self, data: bytes) -> None:
        """Write rendered lines already joined (after everything taken before them)."""
        if self._text.pending:
            self._text.flush()
        self.flush()
        self._raw.write(data)

    def flush(self) -> None:
        """Write the lines taken into the file."""
        if self._pending:
            self._raw.write(b"".join(self._pending))
            self._pending.clear()


def _write_row(text: _Text, writer: Any, cells: list[str], terminator: str) -> None:  # noqa: ANN401
    """Write one row (by hand when it holds a NUL that this Python's csv writer refuses)."""
    if CSV_REFUSES_NUL and any("\0" in cell for cell in cells):
        text.write(csv_line(cells, terminator))
    else:
        writer.writerow(cells)


def newer_copy(row: dict[str, str], newer_by_seconds: float) -> dict[str, str]:
    """Return a later version of a user: the next loyalty tier, modified ``newer_by_seconds`` on.

    Args:
        row: The user's CSV values.
        newer_by_seconds: How much later ``last_modified_date`` is.

    Returns:
        The user's values in the repeated row.
    """
    names = [tier[0] for tier in TIERS]
    tier = row.get("loyalty_status_name", "")
    current = names.index(tier) if tier in names else -1
    name, level, _ = TIERS[(current + 1) % len(TIERS)]
    modified = parse_utc(row.get("last_modified_date") or row["created_date"])
    later = modified + timedelta(seconds=newer_by_seconds)
    return {
        **row,
        "loyalty_status_name": name,
        "loyalty_status_loyalty_level_id": str(level),
        "last_modified_date": later.strftime("%Y-%m-%d %H:%M:%S"),
    }


#: Python 3.10's csv writer refuses NUL characters; rows holding one are written by hand there.
CSV_REFUSES_NUL = sys.version_info < (3, 11)
_SPECIAL = (",", '"', "\r", "\n", "\0")


def csv_line(cells: Iterable[str], terminator: str = "\n") -> str:
    """One RFC 4180 line: fields quoted (quotes doubled) when they hold a special character.

    Args:
        cells: The fields.
        terminator: The line end.

    Returns:
        The line, terminator included.
    """
    return (
        ",".join(
            '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in _SPECIAL) else cell
            for cell in cells
        )
        + terminator
    )


def _malform(cells: list[str], header: list[str], options: ExportOptions) -> list[str]:
    """Break one row: drop its last field, or put a value of the wrong type in a column."""
    if options.malformed_problem == "field_count":
        return cells[:-1]
    column = options.malformed_column
    if column not in header:
        return cells[:-1]
    broken = list(cells)
    broken[header.index(column)] = _BAD_VALUES.get(USER_COLUMNS[column], "")
    return broken
