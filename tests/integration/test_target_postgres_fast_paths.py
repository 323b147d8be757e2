"""The target-postgres wrapper's fast paths: taken only where they load what the plain target loads.

The wrapper stages a run of RECORD messages with the SDK's steps made once per run, and merges
a batch by updating the rows already there before inserting the new ones. Each test loads the
same messages into the plain meltanolabs-target-postgres and into the wrapper (each into a
schema of its own) and compares every row, and checks which path the wrapper took: the run
staging when nothing in the config can change a record on its way, the SDK's own path when a
stream map or record validation is configured. The same for BATCH files: read in blocks, or
by the SDK's own path.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import TARGET_POSTGRES_BIN as BIN
from .conftest import require_postgres_loader, run_target_script
from .test_target_postgres_fast import MOMENTS, edge_cases, table, tap_messages

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

#: Runs a target of the loader's venv, counting the records its run staging took and the
#: records it read from BATCH files in blocks (stderr); blocks of 4 kB, so files span several.
COUNTING = """
import atexit, sys
from target_postgres_fast import batchfiles, runs, sink, FastTargetPostgres
from target_postgres.target import TargetPostgres
staged = [0]
stage = runs.RunStager.stage
def counted(self, *args):
    count = stage(self, *args)
    staged[0] += count
    return count
runs.RunStager.stage = counted
read = [0]
read_records = sink.read_records
def counted_read(*args, **kwargs):
    records = read_records(*args, **kwargs)
    read[0] += len(records)
    return records
sink.read_records = counted_read
batchfiles.BLOCK_BYTES = 4096
atexit.register(lambda: print(f"RUN-STAGED {staged[0]} BLOCK-READ {read[0]}", file=sys.stderr))
target = FastTargetPostgres if sys.argv.pop(1) == "fast" else TargetPostgres
target.cli()
"""


def load(which: str, settings: dict[str, Any], lines: str, tmp: Path, counter: str = "RUN") -> int:
    """Run the plain target or the wrapper over the messages; the records its runs staged.

    With ``counter="BLOCK"``: the records it read from BATCH files in blocks.
    """
    stderr = run_target_script(COUNTING, which, settings, lines, tmp)
    return int(stderr.rsplit(f"{counter}-", 1)[1].split()[1])


def lines_of(messages: list[dict[str, Any]]) -> str:
    """The messages as Singer lines."""
    return "".join(json.dumps(message) + "\n" for message in messages)


def changed(messages: list[dict[str, Any]], every: int, name: str) -> list[dict[str, Any]]:
    """A copy of the messages in which every ``every``-th record has a new ``name``."""
    copies: list[dict[str, Any]] = json.loads(json.dumps(messages))
    records = [message for message in copies if message["type"] == "RECORD"]
    for index, message in enumerate(records[::every]):
        message["record"][name] = f"changed {index}"
    return copies


def test_rows_updated_in_later_batches_and_loads_match_the_plain_target(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """Users sent again in a later batch, and a second load over the first, are merged alike."""
    dsn, settings, schemas = server
    messages = tap_messages(sandbox, tmp_path)
    records = [message for message in messages if message["type"] == "RECORD"]
    # 40 users sent again, changed, after 3 batches of 70: updates of rows loaded before.
    again = json.loads(json.dumps(records[:40]))
    for message in again:
        message["record"]["loyalty_status_name"] = "sent again"
    first = [*messages, *again, {"type": "STATE", "value": {"done": 1}}]
    second = changed(first, 3, "first_name")
    plain, fast = (f"paths_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True}

    for which, schema in (("plain", plain), ("fast", fast)):
        for batch in (first, second):
            load(which, base | {"default_target_schema": schema}, lines_of(batch), tmp_path)

    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows
    names = sorted(name for name in fast_types if name not in MOMENTS)
    loaded = [dict(zip(names, row, strict=True)) for row in fast_rows]
    assert sum(row["loyalty_status_name"] == "sent again" for row in loaded) == 40
    assert sum(str(row["first_name"]).startswith("changed ") for row in loaded) > len(records) / 4


@pytest.mark.parametrize(
    ("extra", "fast_path"),
    [
        ({}, True),
        ({"validate_records": True}, False),
        ({"stream_maps": {"users": {"first_name": "str(first_name).upper()"}}}, False),
        ({"flattening_enabled": True, "flattening_max_depth": 1}, False),
    ],
    ids=["defaults", "validation", "stream-map", "flattening"],
)
def test_the_run_staging_is_taken_only_where_nothing_changes_a_record(
    sandbox: Sandbox,
    tmp_path: Path,
    server: tuple[str, dict[str, Any], list[str]],
    extra: dict[str, Any],
    fast_path: bool,  # noqa: FBT001
) -> None:
    dsn, settings, schemas = server
    lines = lines_of(tap_messages(sandbox, tmp_path))
    plain, fast = (f"paths_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True} | extra

    assert load("plain", base | {"default_target_schema": plain}, lines, tmp_path) == 0
    staged = load("fast", base | {"default_target_schema": fast}, lines, tmp_path)

    assert staged == (len(sandbox.users()) if fast_path else 0)
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows
    if "stream_maps" in extra:
        names = sorted(name for name in fast_types if name not in MOMENTS)
        first_names = [row[names.index("first_name")] for row in fast_rows]
        assert all(name == str(name).upper() for name in first_names)


def batch_messages(messages: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    """The sync's SCHEMA messages, then its records in BATCH files, then 40 users again.

    The records (with a user sent twice and one missing fields) go into a gzip file and an
    uncompressed one; the 40 users sent again, changed, into a third file, as gzip.
    """
    records = [message["record"] for message in edge_cases(messages) if message["type"] == "RECORD"]
    again = json.loads(json.dumps(records[50:90]))
    for record in again:
        record["loyalty_status_name"] = "sent again"
    batches: list[dict[str, Any]] = []
    for index, (part, compression) in enumerate(
        ((records[:150], "gzip"), (records[150:], "none"), (again, "gzip"))
    ):
        text = "".join(json.dumps(record) + "\n" for record in part).encode()
        path = tmp / f"users-{uuid.uuid4().hex[:6]}-{index}.jsonl"
        path.write_bytes(gzip.compress(text) if compression == "gzip" else text)
        batches.append(
            {
                "type": "BATCH",
                "stream": "users",
                "encoding": {"format": "jsonl", "compression": compression},
                "manifest": [path.as_uri()],
            }
        )
    schemas = [message for message in messages if message["type"] == "SCHEMA"]
    return [*schemas, *batches, {"type": "STATE", "value": {"done": 1}}]


@pytest.mark.parametrize(
    ("extra", "fast_path"),
    [
        ({}, True),
        ({"validate_records": True}, False),
        ({"stream_maps": {"users": {"first_name": "str(first_name).upper()"}}}, False),
        ({"flattening_enabled": True, "flattening_max_depth": 1}, False),
    ],
    ids=["defaults", "validation", "stream-map", "flattening"],
)
def test_batch_files_are_read_in_blocks_only_where_nothing_changes_a_record(
    sandbox: Sandbox,
    tmp_path: Path,
    server: tuple[str, dict[str, Any], list[str]],
    extra: dict[str, Any],
    fast_path: bool,  # noqa: FBT001
) -> None:
    """BATCH files (gzip and not) load the plain target's rows, merged alike, either path."""
    dsn, settings, schemas = server
    lines = lines_of(batch_messages(tap_messages(sandbox, tmp_path), tmp_path))
    plain, fast = (f"paths_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}
    base |= {"add_record_metadata": True} | extra

    assert load("plain", base | {"default_target_schema": plain}, lines, tmp_path, "BLOCK") == 0
    read = load("fast", base | {"default_target_schema": fast}, lines, tmp_path, "BLOCK")

    assert read == (len(sandbox.users()) + 1 + 40 if fast_path else 0)
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert fast_types["average_basket_value"] == "numeric", fast_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows
    names = sorted(name for name in fast_types if name not in MOMENTS)
    loaded = [dict(zip(names, row, strict=True)) for row in fast_rows]
    assert sum(row["loyalty_status_name"] == "sent again" for row in loaded) == 40
    assert any(row["created_date"] is None for row in loaded)
    # The SDK loads BATCH files without the _sdc_* metadata, and so does the wrapper.
    assert all(row["_sdc_extracted_at"] is None for row in loaded)


def test_an_empty_batch_file_loads_nothing_in_either_target(
    tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """A stream with no number column and an empty file: no row, no error, the STATE."""
    dsn, settings, schemas = server
    empty = tmp_path / "users-empty.jsonl"
    empty.write_bytes(b"")
    schema = {"type": "object", "properties": {
        "id": {"type": ["integer"]}, "name": {"type": ["string", "null"]}}}  # fmt: skip
    messages = [
        {"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "none"},
         "manifest": [empty.as_uri()]},
        {"type": "STATE", "value": {"done": 1}},
    ]  # fmt: skip
    plain, fast = (f"paths_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False}

    for which, schema_name in (("plain", plain), ("fast", fast)):
        run_target_script(  # fails the test if the target fails
            COUNTING, which, base | {"default_target_schema": schema_name}, lines_of(messages),
            tmp_path,
        )  # fmt: skip

    assert table(dsn, fast) == table(dsn, plain)
    assert table(dsn, fast)[1] == []


def test_a_bad_line_in_a_batch_file_fails_the_wrapper_as_the_plain_target(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """A blank line in the second BATCH file fails both targets with the SDK's JSON error."""
    dsn, settings, schemas = server
    messages = batch_messages(tap_messages(sandbox, tmp_path), tmp_path)
    second = next(
        message for message in messages if message.get("encoding", {}).get("compression") == "none"
    )
    path = tmp_path / second["manifest"][0].rsplit("/", 1)[1]
    text = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*text[:20], b"", *text[20:]]))
    plain, fast = (f"paths_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]
    base = settings | {"use_copy": True, "validate_records": False, "batch_size_rows": 70}

    for which, schema in (("plain", plain), ("fast", fast)):
        config = tmp_path / f"{which}-bad.json"
        config.write_text(json.dumps(base | {"default_target_schema": schema}), encoding="utf-8")
        result = subprocess.run(
            [str(BIN / "python"), "-c", COUNTING, which, "--config", str(config)],
            input=lines_of(messages),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode != 0
        assert "JSONDecodeError: Expecting value" in result.stderr, result.stderr[-2000:]
        assert '"done"' not in result.stdout

    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == 149  # the first file's 150 records, one user sent twice
    assert fast_rows == plain_rows


#: Dates and date-times written many ways; prints how many the run staging keeps as text and
#: every one whose text differs from the bytes psycopg's COPY writes for its parsed value.
TEXTS = """
import datetime as dt, random, sys
from psycopg.adapt import Transformer
from psycopg._copy_base import format_row_text
from singer_sdk.helpers._compat import date_fromisoformat, datetime_fromisoformat
from target_postgres_fast.runs import CANONICAL
random.seed(23)
tx = Transformer()
def copy_bytes(value):
    out = bytearray()
    format_row_text([value], tx, out)
    return bytes(out)
values = []
for _ in range(20000):
    moment = dt.datetime(random.randint(1, 9999), random.randint(1, 12), random.randint(1, 28),
        random.randint(0, 23), random.randint(0, 59), random.randint(0, 59),
        random.choice([0, 1, 999999, random.randint(0, 999999)]))
    zone = random.choice([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=random.randint(0, 23), minutes=random.randint(0, 59)))])
    moment = moment.replace(tzinfo=zone)
    iso = moment.isoformat()
    values += [iso, iso.replace("+00:00", "Z"), iso.replace("+00:00", "-00:00"),
        moment.isoformat(timespec="milliseconds"), moment.isoformat(sep=" "),
        moment.isoformat(timespec="microseconds"), moment.isoformat(timespec="seconds"),
        moment.date().isoformat()]
values += ["2024-02-29T24:00:00+00:00", "2024-13-01T00:00:00", "2024-01-01t00:00:00",
    "\\u0662024-01-01", "2024-W01-1", "20240101", "2024-01-01T00:00:00+24:00", "0000-01-01"]
kept = wrong = 0
for kind, parse in (("date-time", datetime_fromisoformat), ("date", date_fromisoformat)):
    for value in values:
        try:
            parsed = parse(value)
        except ValueError:
            continue
        text = CANONICAL[kind](value)
        if text is None:
            continue
        kept += 1
        if copy_bytes(text) != copy_bytes(parsed):
            wrong += 1
            print("WRONG", kind, repr(value), copy_bytes(text), copy_bytes(parsed))
print("KEPT", kept, "WRONG", wrong)
"""


def test_dates_kept_as_text_reach_copy_as_the_bytes_of_their_parsed_values() -> None:
    """A value staged as text sends COPY the bytes psycopg writes for its parsed value."""
    require_postgres_loader()
    result = subprocess.run(
        [str(BIN / "python"), "-c", TEXTS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "WRONG 0" in result.stdout, result.stdout[-3000:]
    kept = int(result.stdout.split("KEPT ")[1].split()[0])
    assert kept > 50_000, result.stdout[-3000:]
