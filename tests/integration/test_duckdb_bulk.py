"""The DuckDB loader's bulk path loads exactly the rows and types target-duckdb's own path does.

The tap's real output (a RECORD run and a BATCH run of the same sandbox, with repeated users
and empty values) goes through the wrapper in ``loaders/`` (its source, in the installed
loader's environment): once with the default settings (the bulk path: DuckDB's JSON reader),
once with ``flush_all_streams`` (a setting that changes nothing in the rows but keeps
target-duckdb's per-record path). The tables must be equal, row for row and type for type.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from support.requirements import require

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

LOADER_PYTHON = PROJECT_ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
WRAPPER_SOURCE = PROJECT_ROOT / "loaders" / "target-duckdb-final-state"
RUN_WRAPPER = "from target_duckdb_final_state import main; main()"


def tap_output(sb: Sandbox, tmp_path: Path, name: str, **settings: Any) -> Path:
    """Run the tap once (a fresh export with repeated users) and return its output file."""
    sb.inject("duplicate_rows", count=5, newer_by_seconds=60)
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps(sb.tap_config(**settings)), encoding="utf-8")
    output = tmp_path / f"{name}.jsonl"
    with output.open("wb") as sink:
        subprocess.run(
            [sys.executable, "-m", "tap_spaaza_users", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=300,
        )
    sb.engine.store.clear()  # the next run exports afresh instead of adopting this task
    return output


def load(messages: Path, database: Path, **settings: Any) -> list[dict[str, Any]]:
    """Run the wrapper over ``messages`` into ``database``; return the STATE values it emits."""
    config = database.with_suffix(".json")
    config.write_text(
        json.dumps({"filepath": str(database), "default_target_schema": "spaaza", **settings}),
        encoding="utf-8",
    )
    with messages.open("rb") as source:
        result = subprocess.run(
            [str(LOADER_PYTHON), "-c", RUN_WRAPPER, "--config", str(config)],
            stdin=source,
            capture_output=True,
            check=False,
            timeout=300,
            env={"PYTHONPATH": str(WRAPPER_SOURCE), "PATH": "/usr/bin:/bin"},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def table(database: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The users table's column types and its rows by id."""
    with duckdb.connect(str(database), read_only=True) as connection:
        types = connection.execute("DESCRIBE spaaza.users").fetchall()
        rows = connection.execute("SELECT * FROM spaaza.users ORDER BY id").fetchall()
    return types, rows


def require_loader() -> None:
    """The installed target-duckdb loader, or skip (fail under CI)."""
    require(LOADER_PYTHON.exists(), "target-duckdb is not installed", "run `make setup`")


def batch_files(root: Path, compression: str) -> dict[str, Any]:
    """The tap's batch_config: jsonl files of 1,000 users in ``root`` (created)."""
    root.mkdir()
    return {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": root.as_uri(), "prefix": "users-"},
        "batch_size": 1000,
    }


@pytest.fixture
def outputs(tmp_path: Path) -> tuple[Path, Path, Path, int]:
    """A RECORD run's, a BATCH run's and an uncompressed BATCH run's output, and the users."""
    require_loader()
    users = 2500
    with Sandbox(users=users, seed=4, task_base_seconds=0, task_seconds_per_1k_users=0) as sb:
        sb.update_user(5, first_name="", phone_number="", birthday=None, last_name='Say "hi",\n')
        fast = {"poll_interval_seconds": 0.05, "poll_max_interval_seconds": 0.1}
        records = tap_output(sb, tmp_path, "records", **fast)
        batches, plain = (
            tap_output(sb, tmp_path, name, batch_config=batch_files(tmp_path / name, kind), **fast)
            for name, kind in (("batches", "gzip"), ("plain", "none"))
        )
    return records, batches, plain, users


def test_records_and_batch_files_load_the_rows_target_duckdb_loads(
    outputs: tuple[Path, Path, Path, int], tmp_path: Path
) -> None:
    records, batches, plain, users = outputs
    per_record = tmp_path / "per-record.duckdb"
    load(records, per_record, flush_all_streams=True, batch_size_rows=1000)

    bulk = tmp_path / "bulk.duckdb"
    states = load(records, bulk, batch_size_rows=1000)
    from_files = tmp_path / "from-files.duckdb"
    batch_states = load(batches, from_files)
    from_plain_files = tmp_path / "from-plain-files.duckdb"
    load(plain, from_plain_files)  # compression none: DuckDB's 'uncompressed'

    expected_types, expected_rows = table(per_record)
    assert len(expected_rows) == users
    assert table(bulk) == (expected_types, expected_rows)
    assert table(from_files) == (expected_types, expected_rows)
    assert table(from_plain_files) == (expected_types, expected_rows)
    assert "replication_key_value" in states[-1]["bookmarks"]["users"]
    assert "replication_key_value" in batch_states[-1]["bookmarks"]["users"]
    names = [column[0] for column in expected_types]
    by_id = {row[names.index("id")]: dict(zip(names, row, strict=True)) for row in expected_rows}
    user_5 = by_id[5]
    assert user_5["first_name"] is None  # an empty value is NULL, as target-duckdb makes it
    assert user_5["last_name"] == 'Say "hi",\n'


def test_a_sigterm_ends_the_run_and_removes_its_spool_of_records(tmp_path: Path) -> None:
    require_loader()
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "filepath": str(tmp_path / "stopped.duckdb"), "default_target_schema": "spaaza",
        "temp_dir": str(spool_root),
    }), encoding="utf-8")  # fmt: skip
    schema = {"type": "object", "properties": {"id": {"type": ["integer"]}}}
    lines = [{"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]}]
    lines += [{"type": "RECORD", "stream": "users", "record": {"id": n}} for n in range(50)]
    process = subprocess.Popen(
        [str(LOADER_PYTHON), "-c", RUN_WRAPPER, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(WRAPPER_SOURCE), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdin is not None
        process.stdin.write("".join(json.dumps(line) + "\n" for line in lines).encode())
        process.stdin.flush()  # left open: the loader waits for more, its spool on disk
        deadline = time.monotonic() + 30
        while not list(spool_root.rglob("*.jsonl")):
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the loader never spooled the records"
            time.sleep(0.05)

        process.send_signal(signal.SIGTERM)

        assert process.wait(30) == 128 + signal.SIGTERM
        assert list(spool_root.iterdir()) == []  # no user's record is left on disk
    finally:
        process.kill()
        process.communicate()


def test_a_batch_message_on_the_per_record_path_is_a_clear_error(tmp_path: Path) -> None:
    require_loader()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "filepath": str(tmp_path / "metadata.duckdb"), "default_target_schema": "spaaza",
        "add_metadata_columns": True,  # target-duckdb's own path, as the demo environment
    }), encoding="utf-8")  # fmt: skip
    schema = {"type": "object", "properties": {"id": {"type": ["integer"]}}}
    lines = [
        {"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"},
         "manifest": [(tmp_path / "users-1.jsonl.gz").as_uri()]},
    ]  # fmt: skip

    result = subprocess.run(
        [str(LOADER_PYTHON), "-c", RUN_WRAPPER, "--config", str(config)],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PYTHONPATH": str(WRAPPER_SOURCE), "PATH": "/usr/bin:/bin"},
    )

    assert result.returncode != 0
    assert "BATCH messages are loaded only without the settings" in result.stderr
    assert "add_metadata_columns" in result.stderr
    assert "Unknown message type" not in result.stderr
