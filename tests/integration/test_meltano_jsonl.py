"""`meltano run tap-spaaza-users target-jsonl`: rows, types, state and incremental runs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType, parse_utc

from .conftest import Meltano, read_jsonl, tricky_user

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

STATE_ID = "dev:tap-spaaza-users-to-target-jsonl"
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
DEFAULT_LOOKBACK = 60
PYTHON_TYPES: dict[ColumnType, type | tuple[type, ...]] = {
    ColumnType.INTEGER: int,
    ColumnType.BOOLEAN: bool,
    ColumnType.STRING: str,
    ColumnType.DECIMAL: (int, float),
    ColumnType.DATE: str,
    ColumnType.DATE_TIME: str,
}


def run_into(meltano: Meltano, folder: Path) -> list[dict[str, object]]:
    """Run the pipeline into ``folder`` and return the users it wrote."""
    meltano(
        "run",
        "tap-spaaza-users",
        "target-jsonl",
        extra_env={
            "TARGET_JSONL_DESTINATION_PATH": str(folder),
        },
    )
    output = folder / "users.jsonl"
    return read_jsonl(output) if output.exists() else []


def bookmark(meltano: Meltano) -> str:
    """Return the users stream's bookmark from Meltano's system database."""
    state = meltano.state(STATE_ID)
    return cast("str", state["singer_state"]["bookmarks"]["users"]["replication_key_value"])


def test_full_run_writes_every_sandbox_user_typed(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    user_id, tricky = tricky_user(sandbox)
    meltano.use_sandbox(sandbox)

    records = run_into(meltano, tmp_path / "run1")

    expected_ids = {int(user["id"]) for user in sandbox.users()}
    assert len(records) == len(expected_ids)
    assert {record["id"] for record in records} == expected_ids
    for record in records:
        assert set(record) >= set(USER_COLUMNS), "a column is missing from a record"
        for column, column_type in USER_COLUMNS.items():
            value = record[column]
            assert value is None or isinstance(value, PYTHON_TYPES[column_type]), column
        assert RFC3339_UTC.match(str(record["created_date"])), record["created_date"]
    (loaded,) = [record for record in records if record["id"] == user_id]
    for column, value in tricky.items():
        assert loaded[column] == value


def test_state_is_kept_by_meltano_and_second_run_is_incremental(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    meltano.use_sandbox(sandbox)
    first = run_into(meltano, tmp_path / "run1")
    first_bookmark = bookmark(meltano)
    assert first_bookmark == max(str(record["created_date"]) for record in first)
    (first_task,) = sandbox.tasks  # kept by the run that delivered it, for the next to delete

    new_ids = set(sandbox.add_users(4))
    second = run_into(meltano, tmp_path / "run2")

    second_ids = {record["id"] for record in second}
    assert new_ids <= second_ids
    assert len(second) < len(first), "the second run re-read everything"
    exports = [r for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]
    assert len(exports) == 2
    deletes = [(r.path, r.status) for r in sandbox.requests if r.method == "DELETE"]
    assert deletes == [(f"/tasks/{first_task}", 204)]  # by the second run's clean-up
    (second_task,) = sandbox.tasks
    assert second_task != first_task
    (rule,) = exports[1].json["trigger"]["segment"]["rules"]
    window_start = parse_utc(rule["start_date"])
    lookback_start = parse_utc(first_bookmark) - timedelta(minutes=DEFAULT_LOOKBACK)
    # `is_after_date` is strict, so the window may open a moment earlier than the lookback.
    assert lookback_start - timedelta(minutes=1) <= window_start <= lookback_start
    assert all(parse_utc(str(record["created_date"])) >= window_start for record in second)
    assert bookmark(meltano) == max(str(record["created_date"]) for record in second)


def test_state_can_be_listed_and_cleared_with_the_meltano_cli(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    meltano.use_sandbox(sandbox)
    run_into(meltano, tmp_path / "run1")
    assert STATE_ID in meltano("state", "list").stdout

    meltano("state", "clear", "--force", STATE_ID)
    again = run_into(meltano, tmp_path / "run2")

    assert len(again) == len(sandbox.users()), "a cleared state must mean a full sync"


def test_meltano_el_keeps_state_under_the_given_state_id(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    meltano.use_sandbox(sandbox)
    out = {"TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "el1")}
    meltano("el", "tap-spaaza-users", "target-jsonl", "--state-id", "users-nightly", extra_env=out)
    first = read_jsonl(tmp_path / "el1" / "users.jsonl")

    state = meltano.state("users-nightly")["singer_state"]["bookmarks"]["users"]
    assert state["replication_key_value"] == max(str(record["created_date"]) for record in first)

    out = {"TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "el2")}
    meltano(
        "el",
        "tap-spaaza-users",
        "target-jsonl",
        "--state-id",
        "users-nightly",
        "--full-refresh",
        extra_env=out,
    )
    assert len(read_jsonl(tmp_path / "el2" / "users.jsonl")) == len(first)
