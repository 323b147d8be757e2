"""The wrapper's column staging gives each record what its per-record steps give.

The wrapper stages a piece of a run of RECORD messages a field at a time (``columns``), or,
where a record could be treated differently, record by record with the SDK's steps in the
SDK's order (``runs``). A script in the loader's virtual environment builds the real sink
(its table in a schema of its own) and stages the same messages both ways: dates and
date-times written many ways (kept as COPY text or parsed), missing values, messages with and
without ``time_extracted``, and pieces the column staging must leave to the per-record steps
(a value that does not parse, a field the schema lacks, a missing key property).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import TYPE_CHECKING, Any

from .conftest import TARGET_POSTGRES_BIN as BIN

if TYPE_CHECKING:
    from pathlib import Path

#: Stages pieces both ways; prints one line per piece: SAME, DIFFERENT (with the first
#: difference) or PER-RECORD (the column staging declined it).
SCRIPT = """
import copy, datetime as dt, json, random, re, sys
from target_postgres_fast import FastTargetPostgres
config = json.loads(sys.argv[1])
target = FastTargetPostgres(config=config, validate_config=False)
schema = {"type": "object", "properties": {
    "id": {"type": ["integer"]}, "name": {"type": ["string", "null"]},
    "born": {"type": ["string", "null"], "format": "date"},
    "seen": {"type": ["string", "null"], "format": "date-time"},
    "key_seen": {"type": ["string", "null"], "format": "date-time"}}}
target._process_schema_message({"type": "SCHEMA", "stream": "users", "schema": schema,
    "key_properties": ["id", "key_seen"]})
sink = target._sinks_active["users"]
stager = sink.stager(lambda sink: None)
assert stager.columns is not None
random.seed(23)
def moment():
    value = dt.datetime(random.randint(1, 9999), random.randint(1, 12), random.randint(1, 28),
        random.randint(0, 23), random.randint(0, 59), random.randint(0, 59),
        random.choice([0, 1, 999999, random.randint(0, 999999)]))
    zone = random.choice([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=random.randint(0, 23), minutes=random.randint(0, 59)))])
    return value.replace(tzinfo=zone)
def written(value, how):
    iso = value.isoformat()
    return {"iso": iso, "z": iso.replace("+00:00", "Z"), "minus": iso.replace("+00:00", "-00:00"),
        "ms": value.isoformat(timespec="milliseconds"), "space": value.isoformat(sep=" "),
        "seconds": value.isoformat(timespec="seconds"), "date": value.date().isoformat(),
        "none": None}[how]
HOWS = ["iso", "z", "minus", "ms", "space", "seconds", "date", "none"]
def message(index, hows, extracted):
    record = {"id": index, "name": f"user {index}"}
    for field in ("born", "seen", "key_seen"):
        how = random.choice(hows)
        if how == "missing" and field == "key_seen":
            how = "none"  # a key property is never missing (a key of None is)
        if how != "missing":
            how = "date" if field == "born" and how != "none" else how
            record[field] = written(moment(), how)
    if "born" in record and random.random() < 0.2:
        record["born"] = random.choice(["2024-02-29", "20240101", "2024-W01-1", None])
    result = {"type": "RECORD", "stream": "users", "record": record}
    if extracted is not None:
        result["time_extracted"] = random.choice(extracted)
    if random.random() < 0.5:
        result["version"] = 7
    return result
EXTRACTED = ["2026-12-07T01:33:20.335860Z", "2026-12-07T01:33:20Z",
    "2026-12-07T01:33:20.335860+00:00", None]
CLOCKS = ("_sdc_received_at", "_sdc_sequence")
def both(messages):
    context = sink._get_context(messages[0]["record"])
    batched = context["batch_start_time"]
    by_columns = stager.columns.stage(copy.deepcopy(messages), batched, sink.sync_started_at)
    if by_columns is None:
        return "PER-RECORD"
    by_records = []
    stager._stage_records(copy.deepcopy(messages), context, by_records)
    for one, other in zip(by_columns, by_records, strict=True):
        for name in CLOCKS:
            if type(one.pop(name)) is not type(other.pop(name)):
                return f"DIFFERENT type of {name}"
        if one != other or [type(v) for v in one.values()] != [type(v) for v in other.values()]:
            return f"DIFFERENT {one} {other}"
    return "SAME"
pieces = {
    "canonical": [message(i, ["iso"], EXTRACTED[:1]) for i in range(500)],
    "with-z": [message(i, ["iso", "z"], EXTRACTED[:1]) for i in range(500)],
    "mixed": [message(i, HOWS, EXTRACTED) for i in range(3000)],
    "missing": [message(i, ["iso", "none", "missing"], [None]) for i in range(500)],
    "no-time-extracted": [message(i, ["iso"], None) for i in range(50)],
}
bad = [message(i, ["iso"], EXTRACTED[:1]) for i in range(100)]
bad[60]["record"]["seen"] = "2024-02-30T00:00:00"
extra = [message(i, ["iso"], EXTRACTED[:1]) for i in range(100)]
extra[30]["record"]["nickname"] = "not in the schema"
no_key = [message(i, ["iso"], EXTRACTED[:1]) for i in range(100)]
del no_key[99]["record"]["id"]
pieces |= {"bad-value": bad, "extra-field": extra, "no-key": no_key}
for name, piece in pieces.items():
    print(name, both(piece))
"""


def test_the_column_staging_stages_what_the_per_record_steps_stage(
    tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """Same records both ways where it stages; the per-record steps where it must not."""
    _dsn, settings, schemas = server
    schema = f"columns_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    config = settings | {
        "default_target_schema": schema,
        "use_copy": True,
        "validate_records": False,
        "batch_size_rows": 50_000,
        "add_record_metadata": True,
    }
    result = subprocess.run(
        [str(BIN / "python"), "-c", SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert outcomes == {
        "canonical": "SAME",
        "with-z": "SAME",
        "mixed": "SAME",
        "missing": "SAME",
        "no-time-extracted": "SAME",
        "bad-value": "PER-RECORD",
        "extra-field": "PER-RECORD",
        "no-key": "PER-RECORD",
    }, result.stdout[-3000:]
