"""The wrapper copies a batch straight into its table only where the target's merge is the same.

A batch whose keys are all new to the table (and a stream without key properties) is copied
into the table itself instead of a temporary table that is then merged. Each test loads the
same messages with the plain meltanolabs-target-postgres and with the wrapper (each into a
schema of its own), compares every row, and counts the batches the wrapper copied straight
in and the batches it merged.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from .conftest import run_target_script
from .test_target_postgres_fast import table, tap_messages
from .test_target_postgres_fast_paths import lines_of

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

#: Runs the plain target or the wrapper, printing how many batches the wrapper copied into
#: their table ("DIRECT") and into a temporary table ("MERGED").
COUNTING = """
import atexit, sys
from target_postgres_fast import FastTargetPostgres, sink
from target_postgres.target import TargetPostgres
counts = {"DIRECT": 0, "MERGED": 0}
insert = sink.FastPostgresSink.bulk_insert_records
def counted(self, *, table, **kwargs):
    counts["DIRECT" if table.schema is not None else "MERGED"] += 1
    return insert(self, table=table, **kwargs)
sink.FastPostgresSink.bulk_insert_records = counted
atexit.register(lambda: print(f"DIRECT {counts['DIRECT']} MERGED {counts['MERGED']}",
    file=sys.stderr))
target = FastTargetPostgres if sys.argv.pop(1) == "fast" else TargetPostgres
target.cli()
"""


def load(which: str, settings: dict[str, Any], lines: str, tmp: Path) -> tuple[int, int]:
    """Run the plain target or the wrapper; the batches copied straight in, and merged."""
    stderr = run_target_script(COUNTING, which, settings, lines, tmp)
    counts = stderr.rsplit("DIRECT ", 1)[1].split()
    return int(counts[0]), int(counts[2])


def without_keys(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of a stream without key properties (every row appended)."""
    copies: list[dict[str, Any]] = json.loads(json.dumps(messages))
    for message in copies:
        if message["type"] == "SCHEMA":
            message["key_properties"] = []
    return copies


def test_new_keys_are_copied_straight_in_and_the_rest_merged_as_the_plain_target(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """A first load goes straight in; users sent again, and a second load, are merged."""
    dsn, settings, schemas = server
    messages = tap_messages(sandbox, tmp_path)
    records = [message for message in messages if message["type"] == "RECORD"]
    again = json.loads(json.dumps(records[100:110]))
    for message in again:
        message["record"]["first_name"] = "sent again"
    # Batches of 70 new users (straight in), then one of 10 users of the second batch.
    first = [*messages, *again]
    plain, fast = (f"direct_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True}
    batches = -(-len(records) // 70)

    for which, schema in (("plain", plain), ("fast", fast)):
        counts = [load(which, base | {"default_target_schema": schema}, lines_of(first), tmp_path)]
        counts.append(
            load(which, base | {"default_target_schema": schema}, lines_of(messages), tmp_path)
        )
    # ACTIVATE_VERSION, at the end of the sync, loads the last new users: the users sent
    # again after it are a batch of their own, merged.
    assert counts[0] == (batches, 1)
    assert counts[1] == (0, batches)
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows


def test_a_stream_without_keys_is_copied_straight_in_as_the_plain_target_appends(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """Every batch of a stream without key properties goes straight in, twice over."""
    dsn, settings, schemas = server
    lines = lines_of(without_keys(tap_messages(sandbox, tmp_path)))
    plain, fast = (f"direct_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True}
    batches = -(-len(sandbox.users()) // 70)

    for which, schema in (("plain", plain), ("fast", fast)):
        counts = [load(which, base | {"default_target_schema": schema}, lines, tmp_path)]
        counts.append(load(which, base | {"default_target_schema": schema}, lines, tmp_path))
    assert counts == [(batches, 0), (batches, 0)]
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == 2 * len(sandbox.users())
    assert fast_rows == plain_rows


def test_a_table_with_a_column_the_schema_lacks_is_merged_as_the_plain_target(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """A column added to the table by hand (with a default) makes every batch merge."""
    dsn, settings, schemas = server
    messages = tap_messages(sandbox, tmp_path)
    schema_message = next(message for message in messages if message["type"] == "SCHEMA")
    plain, fast = (f"direct_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True}
    batches = -(-len(sandbox.users()) // 70)

    for which, schema in (("plain", plain), ("fast", fast)):
        # The table as the target creates it, then a column of the project's own.
        load(which, base | {"default_target_schema": schema}, lines_of([schema_message]), tmp_path)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"ALTER TABLE {schema}.users ADD COLUMN note text DEFAULT 'kept'")
        counts = load(which, base | {"default_target_schema": schema}, lines_of(messages), tmp_path)
    assert counts == (0, batches)
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert "note" in fast_types
    assert fast_types == plain_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows


def test_rows_sanitized_or_processed_reach_copy_as_the_plain_target_sends_them(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """NULs sanitized, numbers and a Boolean given as 1 processed, as by the plain target."""
    dsn, settings, schemas = server
    messages = tap_messages(sandbox, tmp_path)
    records = [message["record"] for message in messages if message["type"] == "RECORD"]
    records[3]["first_name"] = "nul\u0000inside"
    records[4]["is_employee"] = 1  # not a bool: the Boolean column's processor runs
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True}
    for extra in ({"sanitize_null_text_characters": True}, {}):
        plain, fast = (f"direct_{uuid.uuid4().hex[:10]}" for _ in range(2))
        schemas += [plain, fast]
        if not extra:  # PostgreSQL refuses a NUL: only with sanitizing
            records[3]["first_name"] = "no nul inside"
        lines = lines_of(messages)
        for which, schema in (("plain", plain), ("fast", fast)):
            load(which, base | extra | {"default_target_schema": schema}, lines, tmp_path)
        plain_types, plain_rows = table(dsn, plain)
        fast_types, fast_rows = table(dsn, fast)
        assert fast_types == plain_types
        assert fast_rows == plain_rows
        assert len(fast_rows) == len(sandbox.users())
