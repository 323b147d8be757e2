"""Periodic full refresh against the sandbox: due or not, versions, ACTIVATE_VERSION, resume."""

from __future__ import annotations

import copy
import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.segments import format_rule_date
from tap_spaaza_users.state.keys import LAST_FULL_REFRESH
from tap_spaaza_users.state.refresh import is_due
from tap_spaaza_users.tasks.tags import tag_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox
    from tap_spaaza_users.sandbox.tasks import Task

UTC = dt.timezone.utc
DAYS = 7
#: New values for a user's loyalty tier and programme opt-in.
CHANGES = {
    "loyalty_status_name": "Platinum (changed)",
    "loyalty_status_loyalty_level_id": 99,
    "opt_in_programme_programme_opted_in": False,
}


def activations(output: SyncOutput) -> list[tuple[int, int]]:
    """(position among the messages, version) of each ACTIVATE_VERSION message."""
    return [
        (position, message["version"])
        for position, message in enumerate(output.messages)
        if message["type"] == "ACTIVATE_VERSION"
    ]


def record_versions(output: SyncOutput) -> set[int | None]:
    """The versions the RECORD messages carry (None when absent)."""
    return {m.get("version") for m in output.messages if m["type"] == "RECORD"}


def users_state(output: SyncOutput) -> dict[str, Any]:
    """The users stream's state of the final STATE message."""
    return cast("dict[str, Any]", output.final_state["bookmarks"]["users"])


def made_due(output: SyncOutput) -> dict[str, Any]:
    """The final state with its last full refresh moved a day past the period."""
    state: dict[str, Any] = copy.deepcopy(output.final_state)
    stream = state["bookmarks"]["users"]
    last = parse_utc(stream[LAST_FULL_REFRESH])
    stream[LAST_FULL_REFRESH] = (last - dt.timedelta(days=DAYS + 1)).isoformat()
    return state


def oldest_user(sandbox: Sandbox) -> int:
    """The id of the earliest created user (far behind any bookmark)."""
    return int(min(sandbox.users(), key=lambda row: parse_utc(row["created_date"]))["id"])


def rule_start(task: Task) -> dt.datetime:
    """The start of a task's created_date rule."""
    (rule,) = [r for r in task.trigger["segment"]["rules"] if r["field_name"] == "created_date"]
    return parse_utc(rule["start_date"])


def newest_task(sandbox: Sandbox) -> Task:
    """The last export task created."""
    return max(sandbox.tasks.values(), key=lambda task: task.id)


def test_due_when_never_done_or_older_than_the_period_and_never_when_off() -> None:
    now = dt.datetime(2026, 3, 10, tzinfo=UTC)
    assert is_due({}, DAYS, now)
    assert is_due({LAST_FULL_REFRESH: "2026-03-03T00:00:00+00:00"}, DAYS, now)
    assert not is_due({LAST_FULL_REFRESH: "2026-03-03T00:00:01+00:00"}, DAYS, now)
    assert not is_due({}, None, now)
    assert not is_due({}, 0, now)


def test_first_sync_with_the_setting_on_is_a_full_refresh_with_versions(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    output = sync({**fast_config, "full_refresh_days": DAYS})

    assert output.error is None
    assert output.ids == {int(row["id"]) for row in small_sandbox.users()}
    (opening, version), (closing, again) = activations(output)
    assert version == again
    assert record_versions(output) == {version}
    record_positions = [i for i, m in enumerate(output.messages) if m["type"] == "RECORD"]
    assert opening < record_positions[0]
    assert closing > record_positions[-1]
    state = users_state(output)
    assert "full_refresh" not in state
    assert parse_utc(state[LAST_FULL_REFRESH]) <= dt.datetime.now(UTC)
    assert state["replication_key_value"] == max(r["created_date"] for r in output.records)


def test_setting_off_sends_no_activate_version_and_no_record_version(
    fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    output = sync(fast_config)

    assert output.records
    assert activations(output) == []
    assert record_versions(output) == {None}
    assert LAST_FULL_REFRESH not in users_state(output)


def test_changed_user_comes_back_on_the_next_full_refresh_not_before(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    config = {**fast_config, "full_refresh_days": DAYS, "lookback_minutes": 30}
    first = sync(config)
    user_id = oldest_user(small_sandbox)
    small_sandbox.update_user(user_id, **CHANGES)
    (new_id,) = small_sandbox.add_users(1)

    incremental = sync(config, state=first.final_state)

    assert user_id not in incremental.ids
    assert new_id in incremental.ids
    assert activations(incremental) == []
    assert record_versions(incremental) == {None}
    assert users_state(incremental)[LAST_FULL_REFRESH] == users_state(first)[LAST_FULL_REFRESH]

    refreshed = sync(config, state=made_due(incremental))

    assert refreshed.ids == {int(row["id"]) for row in small_sandbox.users()}
    changed = next(r for r in refreshed.records if r["id"] == user_id)
    assert {name: changed[name] for name in CHANGES} == CHANGES
    # Not the stream's first export: ACTIVATE_VERSION only after the last record.
    ((position, version),) = activations(refreshed)
    assert position > max(i for i, m in enumerate(refreshed.messages) if m["type"] == "RECORD")
    assert record_versions(refreshed) == {version}
    assert "segment" not in newest_task(small_sandbox).trigger  # all users, no window
    assert refreshed.bookmark == incremental.bookmark

    after = sync(config, state=refreshed.final_state)

    assert refreshed.bookmark is not None
    expected_start = parse_utc(refreshed.bookmark) - dt.timedelta(minutes=30, seconds=1)
    assert rule_start(newest_task(small_sandbox)) == expected_start
    assert activations(after) == []
    assert users_state(after)[LAST_FULL_REFRESH] == users_state(refreshed)[LAST_FULL_REFRESH]


def test_bookmark_never_moves_back_on_a_full_refresh(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    config = {**fast_config, "full_refresh_days": DAYS}
    first = sync(config)
    state = made_due(first)
    assert first.bookmark is not None
    ahead = (parse_utc(first.bookmark) + dt.timedelta(days=1)).isoformat()
    state["bookmarks"]["users"]["replication_key_value"] = ahead

    refreshed = sync(config, state=state)

    assert len(refreshed.records) == len(small_sandbox.users())
    assert refreshed.bookmark == ahead


def test_interrupted_full_refresh_keeps_last_full_refresh_and_resumes_its_task_and_version(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    config = {**fast_config, "full_refresh_days": DAYS}
    first = sync(config)
    due = made_due(first)
    small_sandbox.inject("status", status=400, path="/tasks/*/download_url")

    failed = sync(config, state=due)

    assert failed.error is not None
    assert activations(failed) == []
    state = users_state(failed)
    assert state[LAST_FULL_REFRESH] == due["bookmarks"]["users"][LAST_FULL_REFRESH]
    version = state["full_refresh"]["version"]
    task_id = state["in_flight_task"]["id"]
    assert state["in_flight_task"]["full_refresh_version"] == version
    tasks_before = len(small_sandbox.tasks)

    resumed = sync(config, state=failed.final_state)

    assert resumed.error is None
    assert len(small_sandbox.tasks) == tasks_before  # the interrupted run's task, reused
    assert newest_task(small_sandbox).id == task_id
    assert resumed.ids == {int(row["id"]) for row in small_sandbox.users()}
    assert [v for _, v in activations(resumed)] == [version]
    assert record_versions(resumed) == {version}
    resumed_state = users_state(resumed)
    assert "full_refresh" not in resumed_state
    assert parse_utc(resumed_state[LAST_FULL_REFRESH]) > parse_utc(
        due["bookmarks"]["users"][LAST_FULL_REFRESH]
    )


def test_full_refresh_in_backfill_windows_starts_at_start_date_and_resumes_mid_way(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    start = min(parse_utc(row["created_date"]) for row in small_sandbox.users())
    year = dt.timedelta(days=365)
    config = {
        **fast_config,
        "full_refresh_days": DAYS,
        "start_date": start.isoformat(),
        "backfill_window_days": 365,
    }
    first = sync(config)
    second_window_task = max(small_sandbox.tasks) + 2
    small_sandbox.inject("status", status=400, path=f"/tasks/{second_window_task}/download_url")

    failed = sync(config, state=made_due(first))

    assert failed.error is not None
    state = users_state(failed)
    assert parse_utc(state["delivered_before"]) == start + year  # the first window, delivered
    assert state["in_flight_task"]["id"] == second_window_task
    desc = small_sandbox.tasks[second_window_task].desc  # named under its window's key
    assert state["in_flight_task"]["key"] == tag_of({"desc": desc})
    assert f"since {format_rule_date(start + year)}" in desc
    assert {parse_utc(r["created_date"]) < start + year for r in failed.records} == {True}

    last_task = max(small_sandbox.tasks)
    resumed = sync(config, state=failed.final_state)

    assert resumed.error is None
    new_tasks = [task for task_id, task in small_sandbox.tasks.items() if task_id > last_task]
    # The second window's task was reused: no new task asks for that window again.
    assert all(rule_start(task) > start + year for task in new_tasks)
    assert {parse_utc(r["created_date"]) >= start + year for r in resumed.records} == {True}
    assert failed.ids | resumed.ids == {int(row["id"]) for row in small_sandbox.users()}
    version = state["full_refresh"]["version"]
    assert [v for _, v in activations(resumed)] == [version]
    assert record_versions(failed) == record_versions(resumed) == {version}
    assert resumed.bookmark == first.bookmark
    assert "full_refresh" not in users_state(resumed)


def test_batch_mode_full_refresh_reexports_without_activate_version(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    tmp_path: Path,
) -> None:
    batches = {
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": tmp_path.as_uri()},
        "batch_size": 1000,
    }
    config = {**fast_config, "full_refresh_days": DAYS, "batch_config": batches}

    output = sync(config)

    assert output.error is None
    assert activations(output) == []
    (batch,) = [m for m in output.messages if m["type"] == "BATCH"]
    assert "version" not in batch or batch["version"] is None
    (path,) = tmp_path.glob("*.jsonl")
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(small_sandbox.users())
    assert LAST_FULL_REFRESH in users_state(output)
