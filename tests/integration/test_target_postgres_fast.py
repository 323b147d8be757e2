"""The target-postgres wrapper (loaders/target-postgres-fast) loads what the plain target loads.

The same Singer messages (a full-refresh sync of the sandbox, a tricky user, a user sent twice,
a record missing fields) go into the plain meltanolabs-target-postgres and into the wrapper,
both installed in the loader's virtual environment, each into a schema of its own, in several
batches. Tables, column types and every row must be the same, but for the metadata that
records when a row was received or loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from .conftest import TARGET_POSTGRES_BIN as BIN
from .conftest import tricky_user

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

#: Metadata that says when a row was received or loaded: differs between any two loads.
MOMENTS = ("_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at")


def tap_messages(sandbox: Sandbox, tmp_path: Path) -> list[dict[str, Any]]:
    """A first sync with full refresh on (RECORD messages carry a version, ACTIVATE_VERSION)."""
    config = tmp_path / "tap.json"
    config.write_text(json.dumps(sandbox.tap_config(full_refresh_days=7)), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def edge_cases(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with a user sent twice in one batch, and one record missing fields."""
    first = next(i for i, message in enumerate(messages) if message["type"] == "RECORD")
    again = json.loads(json.dumps(messages[first + 5]))
    again["record"]["loyalty_status_name"] = "Sent twice, the last one wins"
    for name in ("created_date", "is_employee", "average_basket_value", "birthday"):
        del messages[first + 6]["record"][name]
    return [*messages[: first + 6], again, *messages[first + 6 :]]


def load(executable: str, settings: dict[str, Any], schema: str, lines: str, tmp: Path) -> None:
    """Run a target of the loader's venv over the messages, into ``schema``."""
    config = tmp / f"{executable}.json"
    target_settings = settings | {
        "default_target_schema": schema,
        "use_copy": True,
        "validate_records": False,
        "batch_size_rows": 70,
        "add_record_metadata": True,
    }
    config.write_text(json.dumps(target_settings), encoding="utf-8")
    subprocess.run(
        [str(BIN / executable), "--config", str(config)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def table(dsn: str, schema: str) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """The users table's column types and its rows (by id), without the load moments."""
    with psycopg.connect(dsn) as connection:
        types: dict[str, str] = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'users'",
                (schema,),
            ).fetchall()
        )
        columns = ", ".join(f'"{name}"' for name in sorted(types) if name not in MOMENTS)
        rows = connection.execute(
            f'SELECT {columns} FROM "{schema}".users ORDER BY id'  # noqa: S608 - our own names
        ).fetchall()
    return types, rows


def test_the_wrapper_loads_the_same_rows_as_the_plain_target(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    dsn, settings, schemas = server
    tricky_id, tricky = tricky_user(sandbox)
    messages = edge_cases(tap_messages(sandbox, tmp_path))
    assert any(message["type"] == "ACTIVATE_VERSION" for message in messages)
    lines = "".join(json.dumps(message) + "\n" for message in messages)
    plain, fast = (f"fast_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]

    load("target-postgres", settings, plain, lines, tmp_path)
    load("target-postgres-fast", settings, fast, lines, tmp_path)

    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert fast_types["created_date"].startswith("timestamp"), fast_types
    assert fast_types["birthday"] == "date", fast_types
    assert fast_types["average_basket_value"] == "numeric", fast_types
    assert len(fast_rows) == len(sandbox.users())
    assert fast_rows == plain_rows
    names = sorted(name for name in fast_types if name not in MOMENTS)
    by_id = {row[names.index("id")]: dict(zip(names, row, strict=True)) for row in fast_rows}
    assert {name: by_id[tricky_id][name] for name in tricky} == tricky
    assert "Sent twice, the last one wins" in {row["loyalty_status_name"] for row in by_id.values()}
    assert any(row["created_date"] is None for row in by_id.values())
    assert all(row["_sdc_table_version"] is not None for row in by_id.values())


def test_a_bad_line_fails_the_wrapper_as_the_plain_target_after_the_same_rows(
    sandbox: Sandbox, tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """A blank line after two full batches fails both targets with the SDK's error.

    The wrapper decodes blocks of lines at once and loads full batches in a thread: it must
    still stop at the first bad line, after loading exactly the rows the plain target loads.
    """
    dsn, settings, schemas = server
    messages = tap_messages(sandbox, tmp_path)
    first = next(i for i, message in enumerate(messages) if message["type"] == "RECORD")
    good = "".join(json.dumps(message) + "\n" for message in messages[: first + 150])
    lines = good + "\n" + "".join(json.dumps(message) + "\n" for message in messages[first + 150 :])
    plain, fast = (f"fast_{uuid.uuid4().hex[:10]}" for _ in range(2))
    schemas += [plain, fast]

    failures = []
    for executable, schema in (("target-postgres", plain), ("target-postgres-fast", fast)):
        with pytest.raises(subprocess.CalledProcessError) as failure:
            load(executable, settings, schema, lines, tmp_path)
        assert "Unable to parse line as JSON" in failure.value.stderr, failure.value.stderr[-2000:]
        failures.append(failure.value)

    assert failures[1].stdout == failures[0].stdout
    plain_types, plain_rows = table(dsn, plain)
    fast_types, fast_rows = table(dsn, fast)
    assert fast_types == plain_types
    assert len(fast_rows) == 140
    assert fast_rows == plain_rows
