"""The wrapper's sink: meltanolabs-target-postgres's PostgresSink with its per-record work hoisted.

See the package's docstring for what changes and why the rows stay the same.
"""

from __future__ import annotations

import operator
from itertools import repeat
from typing import TYPE_CHECKING, Any

import sqlalchemy
from psycopg.copy import QueuedLibpqWriter
from singer_sdk.helpers._batch import StorageTarget
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import (
    get_datelike_property_type,
    handle_invalid_timestamp_in_record,
)
from target_postgres.sinks import PostgresSink

from target_postgres_fast.batchfiles import read_records
from target_postgres_fast.direct import keys_absent, same_columns
from target_postgres_fast.rows import RowBuilder, write_rows
from target_postgres_fast.runs import CANONICAL, RunStager

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from singer_sdk.helpers._batch import BaseBatchFileEncoding
    from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
    from singer_sdk.sinks import Sink

#: The types of the values a Boolean column's processor returns unchanged.
BOOLEAN_TYPES = {bool, type(None)}
#: The SDK's parser of each date-like format.
PARSERS: dict[str, Callable[[str], Any]] = {
    "date-time": datetime_fromisoformat,
    "date": date_fromisoformat,
    "time": time_fromisoformat,
}


class DatelikeFields:
    """The date-like properties of one schema, found once: (name, format) pairs."""

    def __init__(self, properties: dict[str, Any]) -> None:
        """Look at each property's schema once.

        Args:
            properties: The schema's ``properties``.
        """
        self.properties = properties
        self.size = len(properties)
        self.fields = [
            (name, kind)
            for name, schema in properties.items()
            if (kind := get_datelike_property_type(schema))
        ]

    def fits(self, properties: dict[str, Any]) -> bool:
        """Whether this was built from these properties, as they are now."""
        return properties is self.properties and len(properties) == self.size


class FastPostgresSink(PostgresSink):
    """PostgresSink with its per-record, per-field lookups hoisted out of the loops."""

    _datelike: DatelikeFields | None = None
    _stager: RunStager | None = None

    def datelike_fields(self) -> DatelikeFields:
        """The schema's date-like fields, found once per schema."""
        properties = self.schema["properties"]
        datelike = self._datelike
        if datelike is None or not datelike.fits(properties):
            datelike = self._datelike = DatelikeFields(properties)
        return datelike

    def stager(self, drain: Callable[[Sink], None]) -> RunStager:
        """What stages runs of RECORD messages into this sink, built once per schema."""
        datelike = self.datelike_fields()
        stager = self._stager
        if stager is None or stager.datelike_source is not datelike:
            fields = [
                (name, kind, PARSERS[kind], self._canonical_text(name, kind))
                for name, kind in datelike.fields
            ]
            stager = self._stager = RunStager(self, fields, drain)
            stager.datelike_source = datelike
        return stager

    def load_jsonl_files(
        self,
        encoding: BaseBatchFileEncoding,
        files: Sequence[str],
        load: Callable[[Sink, dict[str, Any]], None],
    ) -> None:
        """Load JSONL BATCH files as the SDK's ``process_batch_files``, read by ``batchfiles``.

        Each file's records are counted, then handed to ``load`` (the target's background
        loading, which runs the sink's ``process_batch`` on them, as the SDK does).
        """
        storage = self.batch_config.storage if self.batch_config else None
        for path in files:
            head, tail = StorageTarget.split_url(path)
            file_storage = storage or StorageTarget.from_url(head)
            with file_storage.open(tail, mode="rb") as file:
                records = read_records(file, gzip=encoding.compression == "gzip")
            self.record_counter_metric.increment(len(records))
            load(self, {"records": records})

    def _canonical_text(self, name: str, kind: str) -> Callable[[str], str | None] | None:
        """The test of a value of this field staged as its COPY text (``runs``), or None.

        Only with ``use_copy``, for a field that is not a key property and whose column's
        type has no bind processor (the text then reaches COPY as the parsed value would).
        """
        if not self.config.get("use_copy") or name in self.key_properties:
            return None
        sql_type = self.connector.to_sql_type(self.schema["properties"][name])
        if sql_type.bind_processor(self.connector._dialect) is not None:  # noqa: SLF001
            return None
        return CANONICAL.get(kind)

    def _parse_timestamps_in_record(
        self,
        record: dict[str, Any],
        schema: dict[str, Any],
        treatment: DatetimeErrorTreatmentEnum,
    ) -> None:
        """Parse the record's date-like values, as the SDK does, visiting only those fields.

        Fields missing from the schema are warned about once each, as the SDK does.

        Args:
            record: One record.
            schema: The stream's schema.
            treatment: What to do with a value that does not parse (MAX, NULL or ERROR).
        """
        properties = schema["properties"]
        if properties is self.schema["properties"]:
            datelike = self.datelike_fields()
        else:
            datelike = DatelikeFields(properties)
        if not properties.keys() >= record.keys():
            self._warn_missing_fields(record, schema)
        for key, kind in datelike.fields:
            value = record.get(key)
            if value is None:
                continue
            try:
                record[key] = PARSERS[kind](value)
            except ValueError as ex:
                record[key] = handle_invalid_timestamp_in_record(
                    record, [key], value, kind, ex, treatment, self.logger
                )

    def _warn_missing_fields(self, record: dict[str, Any], schema: dict[str, Any]) -> None:
        """Warn once per field about a record's non-null values the schema does not have."""
        if schema.get("additionalProperties", False):
            return
        for key, value in record.items():
            if (
                key not in schema["properties"]
                and value is not None
                and key not in self._warned_missing_fields
            ):
                self.logger.warning("No schema for record field '%s'", key)
                self._warned_missing_fields.add(key)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Load a batch as the target does, straight into its table where that is the same.

        With ``use_copy``, a batch that the target's merge would insert whole (``direct``)
        is copied into the table itself, in the same transaction, without the temporary
        table; any other batch with the target's steps (as its ``process_batch``, in the
        same transaction as the test), and every batch without ``use_copy`` by the target.
        """
        if not self.config["use_copy"]:
            super().process_batch(context)
            return
        records = context["records"]
        with self.connector._connect() as connection, connection.begin():  # noqa: SLF001
            table = self.connector.prepare_table(
                full_table_name=self.full_table_name,
                schema=self.schema,
                primary_keys=self.key_properties,
                as_temp_table=False,
                connection=connection,
            )
            if same_columns(table, self.schema) and (
                self.append_only is True
                or keys_absent(table, self.key_properties, records, connection)
            ):
                self.bulk_insert_records(
                    table=table,
                    schema=self.schema,
                    primary_keys=self.key_properties,
                    records=records,
                    connection=connection,
                )
                return
            temp_table = self.connector.copy_table_structure(
                full_table_name=self.temp_table_name,
                from_table=table,
                as_temp_table=True,
                connection=connection,
            )
            self.bulk_insert_records(
                table=temp_table,
                schema=self.schema,
                primary_keys=self.key_properties,
                records=records,
                connection=connection,
            )
            self.upsert(
                from_table=temp_table,
                to_table=table,
                schema=self.schema,
                join_keys=self.key_properties,
                connection=connection,
            )
            self.connector.drop_table(table=temp_table, connection=connection)

    def bulk_insert_records(  # type: ignore[override]
        self,
        table: sqlalchemy.Table,
        schema: dict[str, Any],
        records: Iterable[dict[str, Any]],
        primary_keys: Sequence[str],
        connection: sqlalchemy.engine.Connection,
    ) -> int | None:
        """COPY the records as the target does, one row list built per record.

        As in the target, only the last record of each primary key is kept (unless the
        stream has none). Without ``use_copy``, the target's own INSERT path.

        Returns:
            True, as the target does.
        """
        if not self.config["use_copy"]:
            return super().bulk_insert_records(
                table=table,
                schema=schema,
                records=records,
                primary_keys=primary_keys,
                connection=connection,
            )
        columns = self.column_representation(schema)
        names = [column.name for column in columns]
        sanitize = bool(self.connector.sanitize_null_text_characters)
        batch = records if isinstance(records, list) else list(records)
        if not batch:
            return True  # nothing to copy (an empty BATCH file); the plain target copies no row
        if self.append_only is False:
            # The last record of each key, in the order of each key's first record: the
            # target's dict of key tuples, built by C loops (one key is compared as itself).
            key_of = operator.itemgetter(*primary_keys)
            batch = list(dict(zip(map(key_of, batch), batch, strict=True)).values())
        processors = _processors(columns, batch, connection)
        # Without sanitizing, the rows are processed and formatted by C loops (``rows``),
        # their processed columns last.
        builder = RowBuilder(names)
        order = list(range(len(columns)))
        if sanitize:
            rows = builder.rows(batch)
        else:
            order, rows = builder.processed_rows(batch, processors)
        statement = self.copy_statement(table, [columns[index] for index in order], connection)
        self.logger.info("Inserting with SQL: %s", statement)
        cursor = connection.connection.cursor()
        # The rows go to the server from a thread of psycopg's, while this one formats more.
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            if not sanitize:
                write_rows(copy, rows)
                return True
            for values in rows:
                row = [self.sanitize_null_text_characters(value) for value in values]
                for index, processor in processors:
                    row[index] = processor(row[index])
                copy.write_row(row)
        return True

    def copy_statement(
        self,
        table: sqlalchemy.Table,
        columns: list[sqlalchemy.Column[Any]],
        connection: sqlalchemy.engine.Connection,
    ) -> str:
        """The target's COPY statement; into the table itself (``direct``), with its schema."""
        statement = self.generate_copy_statement(table.name, columns)
        if table.schema is None:  # the temporary table, as the target names it
            return statement
        qualified = connection.dialect.identifier_preparer.format_table(table)
        return statement.replace(f'"{table.name}"', qualified, 1)

    def upsert(
        self,
        from_table: sqlalchemy.Table,
        to_table: sqlalchemy.Table,
        schema: dict[str, Any],
        join_keys: Sequence[str],
        connection: sqlalchemy.engine.Connection,
    ) -> int | None:
        """Merge the batch as the target does, updating the rows that exist before inserting.

        The target inserts the batch's rows whose keys are not in the table, then updates
        every row of the table whose key is in the batch: the rows it has just inserted
        too, each written a second time with the values it already holds. Here the same
        UPDATE runs first, on the rows that were there before, then the same INSERT of the
        rows whose keys are not in the table. The table ends the same: a row whose key is
        in the batch holds the batch's values either way, and no other row is touched.
        Without key properties, the target's own append.

        Returns:
            None, as the target does.
        """
        if self.append_only is True:
            return super().upsert(from_table, to_table, schema, join_keys, connection)
        join_condition = sqlalchemy.and_(
            *(from_table.columns[key] == to_table.columns[key] for key in join_keys)
        )
        update_columns = {
            to_table.columns[name]: from_table.columns[name] for name in self.schema["properties"]
        }
        connection.execute(sqlalchemy.update(to_table).where(join_condition).values(update_columns))
        new_rows = (
            sqlalchemy.select(from_table.columns)  # type: ignore[call-overload]
            .select_from(from_table.outerjoin(to_table, join_condition))
            .where(sqlalchemy.and_(*(to_table.columns[key].is_(None) for key in join_keys)))
        )
        connection.execute(
            sqlalchemy.insert(to_table).from_select(names=from_table.columns, select=new_rows)
        )
        return None


def _processors(
    columns: list[sqlalchemy.Column[Any]],
    batch: list[dict[str, Any]],
    connection: sqlalchemy.engine.Connection,
) -> list[tuple[int, Any]]:
    """The (index, processor) of each column whose values the target passes to its processor.

    A Boolean's processor returns None, True and False as they are: a column of only those
    (its values' types found by C loops, not one test per value) is not passed to it.
    """
    processors: list[tuple[int, Any]] = []
    for index, column in enumerate(columns):
        processor = column.type.bind_processor(connection.dialect)
        if processor is None:
            continue
        if (
            isinstance(column.type, sqlalchemy.Boolean)
            and set(map(type, map(dict.get, batch, repeat(column.name)))) <= BOOLEAN_TYPES
        ):
            continue
        processors.append((index, processor))
    return processors
