"""COPY rows: taken from the records and formatted, each by C loops a block at a time.

Both give what the target's own loop gives: a row per record with its values in column
order (a missing field as None), and the bytes psycopg's ``write_row`` sends for it.
"""

from __future__ import annotations

import itertools
import operator
from collections import deque
from itertools import repeat
from typing import TYPE_CHECKING, Any

from psycopg._copy_base import TextFormatter, format_row_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from psycopg import Copy

#: The rows formatted into one block of COPY data (about half a megabyte of users).
ROWS_PER_WRITE = 1000


class RowBuilder:
    """A record's values in column order, a missing field as None (as ``dict.get``)."""

    def __init__(self, names: list[str]) -> None:
        """Build the getter of these columns once.

        Args:
            names: The columns, in order.
        """
        self.names = names
        self.getter = operator.itemgetter(*names) if len(names) > 1 else None

    def __call__(self, record: dict[str, Any]) -> list[Any]:
        """The record's row: one C call when every field is present (the usual case)."""
        if self.getter is not None:
            try:
                return list(self.getter(record))
            except KeyError:
                pass
        return [record.get(name) for name in self.names]

    def rows(self, records: list[dict[str, Any]]) -> list[Sequence[Any]]:
        """The records' rows (tuples, or lists): C loops when every record has every field.

        Also C loops when the fields missing from the first record are missing from every
        record and the others are in every record (records of BATCH files: the schema has
        ``_sdc_*`` columns that no such record has): see ``padded_rows``.
        """
        if self.getter is not None:
            try:
                return list(map(self.getter, records))
            except KeyError:
                padded = self.padded_rows(records)
                if padded is not None:
                    return padded
        return [self(record) for record in records]

    def processed_rows(
        self,
        records: list[dict[str, Any]],
        processors: list[tuple[int, Callable[[Any], Any]]],
    ) -> tuple[list[int], list[Sequence[Any]]]:
        """The records' rows processed (``processed``), and the order of their columns.

        Straight from the records by C loops where every record has every unprocessed
        field: one getter of those per record, the processed columns appended.
        """
        done = dict(processors)
        kept = [index for index in range(len(self.names)) if index not in done]
        if done and len(kept) > 1:
            columns = (
                map(processor, map(dict.get, records, repeat(self.names[index])))
                for index, processor in done.items()
            )
            head = map(operator.itemgetter(*(self.names[index] for index in kept)), records)
            try:
                return [*kept, *done], list(map(operator.add, head, zip(*columns, strict=True)))
            except KeyError:
                pass
        return processed(self.rows(records), processors)

    def padded_rows(self, records: list[dict[str, Any]]) -> list[Sequence[Any]] | None:
        """The rows, if every record lacks the same fields (None where they differ).

        Each record's present fields are taken by one getter, the tuple is extended by one
        None per missing field, and one more getter puts the values in column order.
        """
        present = [name for name in self.names if name in records[0]]
        missing = [name for name in self.names if name not in records[0]]
        if len(present) < 2 or any(  # noqa: PLR2004 - a getter of one name returns no tuple
            any(map(operator.contains, records, itertools.repeat(name))) for name in missing
        ):
            return None
        padding = (None,) * len(missing)
        try:
            values = map(
                operator.add, map(operator.itemgetter(*present), records), itertools.repeat(padding)
            )
            if self.names[len(present) :] == missing:
                # The missing columns are the last ones (the _sdc_* columns): in order already.
                return list(values)
            position = {name: index for index, name in enumerate([*present, *missing])}
            order = operator.itemgetter(*(position[name] for name in self.names))
            return list(map(order, values))
        except KeyError:
            return None


def processed(
    rows: list[Sequence[Any]], processors: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[list[int], list[Sequence[Any]]]:
    """The rows with each processor applied to its column's values; the order of their columns.

    Each processor is mapped over its column, as the target's loop applies it to that value
    of each row. By C loops, the processed columns appended to the others (one getter per
    row): the rows' columns are then in the returned order (for COPY's column list).
    """
    width = len(rows[0]) if rows else 0
    done = dict(processors)
    kept = [index for index in range(width) if index not in done]
    if not done:
        return list(range(width)), rows
    if len(kept) < 2:  # noqa: PLR2004 - a getter of one index returns no tuple: row by row
        return list(range(width)), [
            tuple(done[index](value) if index in done else value for index, value in enumerate(row))
            for row in rows
        ]
    columns = (
        map(processor, map(operator.itemgetter(index), rows)) for index, processor in done.items()
    )
    head = map(operator.itemgetter(*kept), rows)
    return [*kept, *done], list(map(operator.add, head, zip(*columns, strict=True)))


def write_rows(copy: Copy, rows: list[Sequence[Any]]) -> None:
    """Send the rows as ``copy.write_row`` would, formatted by C loops a block of rows at a time.

    ``write_row`` formats each row with psycopg's ``format_row_text`` into a buffer sent
    when it is full, through two Python calls per row; here the same function formats a
    block of rows into a buffer by ``map``, and the block is sent with ``copy.write``: the
    same bytes, in the same order.
    """
    if not isinstance(copy.formatter, TextFormatter):
        for row in rows:
            copy.write_row(row)
        return
    transformer = copy.formatter.transformer
    for start in range(0, len(rows), ROWS_PER_WRITE):
        out = bytearray()
        block = rows[start : start + ROWS_PER_WRITE]
        deque(map(format_row_text, block, repeat(transformer), repeat(out)), maxlen=0)
        copy.write(out)
