"""When a batch can be copied straight into its table, with the rows the target's merge gives.

The target loads every batch by COPY into a temporary table with the table's columns, then
merges: it inserts the rows whose key is not in the table and updates the rows whose key is
(a stream without key properties: it inserts every row). The server writes each row twice,
and reads it back once. Where the merge would insert every row of the temporary table and
update none, COPY into the table itself leaves the table as the merge would:

- the table's columns are exactly the schema's properties, the columns COPY fills: the
  temporary table would have no other column, whose NULL the merge would insert where COPY
  into the table gives the column's default;
- a stream without key properties: the merge inserts every row;
- with key properties: no row of the table has the key of a row of the batch (one query, the
  batch's keys as arrays of the key columns' types, joined to the table with the merge's own
  ``=``, so a NULL key matches nothing, as in the merge). Only for keys that are all of the
  column's Python type (``int`` for an integer column, ``str`` for a text one) or None;
  anything else takes the merge.

A row the batch sends twice is sent once by either path (``bulk_insert_records`` keeps the
last record of each key). A value the table's type rejects fails COPY either way, and the
transaction with it.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import sqlalchemy


def same_columns(table: sqlalchemy.Table, schema: dict[str, Any]) -> bool:
    """Whether the table's columns are exactly the schema's properties."""
    return set(table.columns.keys()) == set(schema["properties"])


def key_type(column: sqlalchemy.Column[Any]) -> type | None:
    """The Python type of the column's values where it is int or str (else None)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return None
    return python_type if python_type in {int, str} else None


def int_array(values: list[int | None]) -> list[int | None] | str:
    """Integers as PostgreSQL's array text (``{1,2,3}``, what psycopg sends for the list).

    ``str`` of an int is its decimal text; a list with None is left to psycopg.
    """
    if None in values:
        return values
    return "{" + ",".join(map(str, values)) + "}"


def keys_absent(
    table: sqlalchemy.Table,
    keys: Sequence[str],
    records: list[dict[str, Any]],
    connection: sqlalchemy.engine.Connection,
) -> bool:
    """Whether no row of the table has the key of any of the records (see the module)."""
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    arrays: list[list[Any] | str] = []
    casts: list[str] = []
    for key in keys:
        column = table.columns[key]
        python_type = key_type(column)
        try:
            values = list(map(operator.itemgetter(key), records))
        except KeyError:
            return False
        if python_type is None or not set(map(type, values)) <= {python_type, type(None)}:
            return False
        arrays.append(int_array(values) if python_type is int else values)
        casts.append(f"CAST(%s AS {column.type.compile(dialect=dialect)}[])")
    names = [f"k{index}" for index in range(len(keys))]
    on = " AND ".join(f"t.{quote(key)} = b.{name}" for key, name in zip(keys, names, strict=True))
    # Names quoted by the dialect, types compiled by it; the keys are bound as parameters.
    statement = (
        f"SELECT 1 FROM {dialect.identifier_preparer.format_table(table)} AS t"  # noqa: S608
        f" JOIN unnest({', '.join(casts)}) AS b({', '.join(names)}) ON {on} LIMIT 1"
    )
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statement, arrays)
        return cursor.fetchone() is None
    finally:
        cursor.close()
