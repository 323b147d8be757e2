"""The users stream end to end against the sandbox: full, incremental and bounded syncs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, cast

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType, parse_utc
from tap_spaaza_users.errors import SpaazaInvalidRowError
from tap_spaaza_users.records.reader import CONVERTERS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from tap_spaaza_users.sandbox import Sandbox

UTC = dt.timezone.utc
TRICKY = {
    "first_name": 'Zoë "the, quoted" ',
    "last_name": "  line one\nline two  ",
    "address_streetname": "Straße, 12\r\nBus 3",
}


def rule_start(task: Any) -> str:
    """The created_date rule's start_date of a recorded task."""
    (rule,) = [r for r in task.trigger["segment"]["rules"] if r["field_name"] == "created_date"]
    assert rule["operator"] == "is_after_date"
    return cast("str", rule["start_date"])


def assert_same_values(record: dict[str, Any], raw: dict[str, Any]) -> None:
    """Every column of a record matches the sandbox's CSV text, typed or byte-identical."""
    for column, kind in USER_COLUMNS.items():
        text = raw[column]
        if kind is ColumnType.STRING:
            assert record[column] == (text or None), column
        else:
            assert record[column] == (CONVERTERS[kind](text) if text else None), column


def test_full_sync_emits_exactly_the_sandbox_users_with_typed_values(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    (user_id,) = small_sandbox.add_users(1)
    small_sandbox.update_user(user_id, **TRICKY)

    output = sync(fast_config)

    assert output.error is None
    source = {int(row["id"]): row for row in small_sandbox.users()}
    assert len(output.records) == len(source)
    assert output.ids == set(source)
    for record in output.records:
        assert_same_values(record, source[record["id"]])
    tricky = next(r for r in output.records if r["id"] == user_id)
    assert {k: tricky[k] for k in TRICKY} == TRICKY
    assert isinstance(tricky["is_employee"], bool)
    assert output.bookmark == max(r["created_date"] for r in output.records)
    (task,) = small_sandbox.tasks.values()
    assert "segment" not in task.trigger  # no start_date, no state: all users


def test_incremental_syncs_start_at_bookmark_minus_lookback(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config, "lookback_minutes": 30}
    first = sync(config)
    bookmark = parse_utc(first.bookmark)

    second = sync(config, state=first.final_state)

    window = bookmark - dt.timedelta(minutes=30)
    second_task = max(small_sandbox.tasks.values(), key=lambda t: t.id)
    # is_after_date is strict: the rule starts one second early so users created exactly
    # at the window start are kept.
    assert parse_utc(rule_start(second_task)) == window - dt.timedelta(seconds=1)
    overlap = {
        int(row["id"]) for row in small_sandbox.users() if parse_utc(row["created_date"]) >= window
    }
    assert second.ids == overlap
    assert second.bookmark == first.bookmark

    new_ids = small_sandbox.add_users(3, created_date=bookmark + dt.timedelta(minutes=5))
    third = sync(config, state=second.final_state)

    assert set(new_ids) <= third.ids
    assert third.ids == overlap | set(new_ids)
    assert parse_utc(third.bookmark) == bookmark + dt.timedelta(minutes=5)


def test_state_with_a_bookmark_but_no_replication_key_still_syncs_incrementally(
    fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    first = sync(fast_config)
    state = first.final_state
    del state["bookmarks"]["users"]["replication_key"]  # e.g. a state written by hand

    second = sync(fast_config, state=state)

    assert second.error is None
    assert len(second.records) < len(first.records)
    assert second.final_state["bookmarks"]["users"]["replication_key"] == "created_date"


def test_start_date_bounds_the_first_sync_inclusively(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    start = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    at_start = small_sandbox.add_users(2, created_date=start)
    just_before = small_sandbox.add_users(1, created_date=start - dt.timedelta(seconds=1))

    output = sync({**fast_config, "start_date": "2025-03-01T12:00:00Z"})

    assert output.error is None
    assert set(at_start) <= output.ids
    assert not set(just_before) & output.ids
    assert all(parse_utc(r["created_date"]) >= start for r in output.records)
    expected = {
        int(r["id"]) for r in small_sandbox.users() if parse_utc(r["created_date"]) >= start
    }
    assert output.ids == expected


def test_lookback_never_reaches_before_start_date(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    start = "2025-03-01T12:00:00+00:00"
    bookmark = {"replication_key": "created_date", "replication_key_value": "2025-03-01T12:10:00Z"}
    state = {"bookmarks": {"users": bookmark}}
    output = sync({**fast_config, "start_date": start, "lookback_minutes": 60}, state=state)

    assert output.error is None
    (task,) = small_sandbox.tasks.values()
    assert rule_start(task) == "2025-03-01T11:59:59Z"
    assert all(r["created_date"] >= start for r in output.records)


def test_failed_sync_leaves_the_bookmark_untouched(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    first = sync(fast_config)
    small_sandbox.add_users(5)
    small_sandbox.inject("malformed_rows")

    failed = sync(fast_config, state=first.final_state)

    assert isinstance(failed.error, SpaazaInvalidRowError)
    assert failed.states, "the SDK writes the incoming state first"
    for state in failed.states:
        assert state["bookmarks"]["users"]["replication_key_value"] == first.bookmark


def test_extra_columns_are_kept_as_strings_and_declared_before_the_first_record(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.set_csv_dialect(extra_columns=["store_cluster"])

    output = sync(fast_config)

    assert output.error is None
    first_record = next(i for i, m in enumerate(output.messages) if m["type"] == "RECORD")
    last_schema = max(i for i, m in enumerate(output.messages) if m["type"] == "SCHEMA")
    assert last_schema < first_record
    schema = output.messages[last_schema]["schema"]
    assert schema["properties"]["store_cluster"]["type"] == ["string", "null"]
    assert all("store_cluster" in r for r in output.records)


def test_logs_tell_the_story_without_the_secret(
    fast_config: dict[str, Any], caplog: pytest.LogCaptureFixture, sync: Callable[..., Any]
) -> None:
    caplog.set_level(logging.DEBUG)

    output = sync(fast_config)

    assert output.error is None
    text = caplog.text
    assert fast_config["access_token_secret"] not in text
    assert fast_config["access_token_secret"] not in json.dumps(output.messages, default=str)
    assert "X-Amz-Signature" not in text
    assert "Created export task" in text
    assert "is DONE" in text
    assert f"Emitted {len(output.records)} users" in text
    assert "Bookmark created_date advances to" in text


def test_cli_sync_with_state_file_and_temp_files_cleaned_up(
    small_sandbox: Sandbox, tmp_path: Path, fast_settings: dict[str, Any]
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(small_sandbox.tap_config(**fast_settings)))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    argv = [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)]

    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=True)
    messages = [json.loads(line) for line in first.stdout.splitlines()]
    state = [m["value"] for m in messages if m["type"] == "STATE"][-1]
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state))
    new_ids = small_sandbox.add_users(2)
    second = subprocess.run(
        [*argv, "--state", str(state_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )

    records = [json.loads(line)["record"] for line in second.stdout.splitlines()
               if '"type":"RECORD"' in line]  # fmt: skip
    assert {r["id"] for r in records} >= set(new_ids)
    assert len(records) < len(small_sandbox.users())
    assert list(scratch.iterdir()) == []
    assert small_sandbox.token_secret not in first.stderr + second.stderr
    assert tempfile.gettempdir() != str(scratch)


def test_expired_download_url_is_refreshed_not_recreated(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("url_expired")

    output = sync(fast_config)

    assert output.error is None
    assert len(output.records) == len(small_sandbox.users())
    assert len(small_sandbox.tasks) == 1
    url_calls = [r for r in small_sandbox.requests if r.path.endswith("/download_url")]
    assert len(url_calls) == 2


def test_dropped_download_resumes_without_emitting_a_record_twice(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("drop_connection", after_bytes=9000)
    small_sandbox.inject("gzip", mode="raw")

    output = sync(fast_config)

    assert output.error is None
    assert len(output.records) == len(output.ids) == len(small_sandbox.users())


def test_storage_download_carries_no_credentials(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    output = sync(fast_config)

    assert output.error is None
    storage = [r for r in small_sandbox.requests if r.server == "storage"]
    assert storage
    for request in storage:
        headers = {name.lower() for name in request.headers}
        assert "authorization" not in headers
        assert "cookie" not in headers
    api = [r for r in small_sandbox.requests if r.server == "api"]
    assert all("authorization" in {n.lower() for n in r.headers} for r in api)


def test_cli_failure_is_one_clear_line_and_debug_logs_hold_no_secret(
    small_sandbox: Sandbox, fast_settings: dict[str, Any], tmp_path: Path
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(small_sandbox.tap_config(**fast_settings)))
    small_sandbox.inject("task_error", logs=["Segment index is being rebuilt"])
    env = {**os.environ, "TAP_SPAAZA_USERS_LOGLEVEL": "DEBUG"}

    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert any("ended in ERROR: ERROR Segment index is being rebuilt" in e for e in errors)
    assert "Traceback" not in result.stderr
    assert "DEBUG" in result.stderr
    assert small_sandbox.token_secret not in result.stderr + result.stdout
