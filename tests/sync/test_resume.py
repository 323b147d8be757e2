"""Resumable sync: the in-flight task in state, its reuse in each state, index lag, equal stamps."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.errors import SpaazaTaskTimeoutError
from tap_spaaza_users.export import build_export_task
from tap_spaaza_users.tap import TapSpaazaUsers
from tap_spaaza_users.tasks.tags import tag_of, task_key
from tap_spaaza_users.windows import Window

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from tap_spaaza_users.sandbox import Sandbox

#: The window of a sync without start_date or bookmark: all history.
ALL_HISTORY = Window(None, None)


def posts(sandbox: Sandbox) -> list[Any]:
    """The task creations the sandbox answered."""
    return [r for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]


def deletes(sandbox: Sandbox) -> list[int]:
    """The ids of the tasks the tap deleted."""
    return [int(r.path.rsplit("/", 1)[1]) for r in sandbox.requests if r.method == "DELETE"]


def window_body(config: dict[str, Any], window: Window) -> dict[str, Any]:
    """The task body a run of ``config`` sends for a window (no segment settings)."""
    return build_export_task(
        chain_id=config["chain_id"],
        window_start=window.start,
        window_end=window.end,
        now=dt.datetime.now(dt.timezone.utc),
        origin="earlier run",
    )


def create_task(config: dict[str, Any]) -> int:
    """Create an all-history export task the way a previous run would have."""
    tap = TapSpaazaUsers(config=config, parse_env_config=False)
    body = window_body(config, ALL_HISTORY)
    with contextlib.closing(tap.make_client()) as client:
        return int(client.create_task(body)["id"])


def state_with_task(
    config: dict[str, Any], task_id: int, window: Window = ALL_HISTORY
) -> dict[str, Any]:
    """A state whose in-flight task is ``task_id``, named under a window's task key."""
    key = task_key(config["chain_id"], window.key(), window_body(config, window))
    # Named just now: an entry past the adoption limits is not reused (test_unobtainable_files).
    named = dt.datetime.now(dt.timezone.utc).isoformat()
    entry = {"id": task_id, "key": key, "created_at": named}
    return {"bookmarks": {"users": {"in_flight_task": entry}}}


def wait_for_code(sandbox: Sandbox, task_id: int, code: str) -> None:
    """Wait until a sandbox task reaches a state code."""
    deadline = time.monotonic() + 10
    while sandbox.tasks[task_id].code != code:
        assert time.monotonic() < deadline, f"task {task_id} never reached {code}"
        time.sleep(0.02)


def test_state_names_the_task_as_soon_as_it_is_created(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    output = sync(fast_config)

    assert output.error is None
    (post,) = posts(small_sandbox)
    task_id = max(small_sandbox.tasks)
    first_state = output.states[0]["bookmarks"]["users"]
    assert first_state["in_flight_task"]["id"] == task_id
    assert first_state["in_flight_task"]["key"] == tag_of(post.json)  # the task's own tag
    assert (
        first_state["in_flight_task"]["key"]
        == state_with_task(fast_config, task_id)["bookmarks"]["users"]["in_flight_task"]["key"]
    )  # the all-history window's key
    assert "replication_key_value" not in first_state  # nothing delivered yet
    assert post.status == 201
    assert "in_flight_task" not in output.final_state["bookmarks"]["users"]
    assert output.bookmark == max(r["created_date"] for r in output.records)


def test_failed_download_leaves_a_state_whose_rerun_reuses_the_done_task(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("status", status=400, path="/tasks/*/download_url")
    failed = sync(fast_config)
    assert failed.error is not None
    assert failed.records == []
    in_flight = failed.final_state["bookmarks"]["users"]["in_flight_task"]

    rerun = sync(fast_config, state=failed.final_state)

    assert rerun.error is None
    assert len(posts(small_sandbox)) == 1  # the rerun created no task
    assert rerun.ids == {int(u["id"]) for u in small_sandbox.users()}
    downloads = [r for r in small_sandbox.requests if r.path.endswith("/download_url")]
    assert downloads[-1].path == f"/tasks/{in_flight['id']}/download_url"
    assert downloads[-1].status == 200


def test_rerun_keeps_polling_a_task_still_in_progress(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("task_stuck", seconds=0.6)
    task_id = create_task(fast_config)
    wait_for_code(small_sandbox, task_id, "INPROGRESS")

    output = sync(fast_config, state=state_with_task(fast_config, task_id))

    assert output.error is None
    assert len(posts(small_sandbox)) == 1  # only the earlier run's
    assert output.ids == {int(u["id"]) for u in small_sandbox.users()}
    polls = [r for r in small_sandbox.requests if r.path == f"/tasks/{task_id}"]
    assert len(polls) >= 2  # looked it up, then waited for it


def test_rerun_replaces_and_deletes_a_task_in_error(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("task_error")
    failed_id = create_task(fast_config)
    wait_for_code(small_sandbox, failed_id, "ERROR")

    output = sync(fast_config, state=state_with_task(fast_config, failed_id))

    assert output.error is None
    assert len(posts(small_sandbox)) == 2  # a new task replaced the failed one
    assert failed_id in deletes(small_sandbox)
    assert output.ids == {int(u["id"]) for u in small_sandbox.users()}


def test_rerun_creates_a_new_task_when_the_old_one_is_gone(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    output = sync(fast_config, state=state_with_task(fast_config, 987_654))

    assert output.error is None
    assert len(posts(small_sandbox)) == 1
    assert output.ids == {int(u["id"]) for u in small_sandbox.users()}


def test_task_of_another_window_is_deleted_not_reused(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    old_id = create_task(fast_config)
    wait_for_code(small_sandbox, old_id, "DONE")
    since_2020 = Window(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), None)
    state = state_with_task(fast_config, old_id, since_2020)

    output = sync(fast_config, state=state)

    assert output.error is None
    assert deletes(small_sandbox) == [old_id]
    assert len(posts(small_sandbox)) == 2


def test_timeout_forgets_the_deleted_task_and_keeps_the_bookmark(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    first = sync(fast_config)
    small_sandbox.inject("task_stuck", seconds=30)

    output = sync({**fast_config, "task_timeout_minutes": 0.005}, state=first.final_state)

    assert isinstance(output.error, SpaazaTaskTimeoutError)
    users_state = output.final_state["bookmarks"]["users"]
    assert "in_flight_task" not in users_state
    assert users_state["replication_key_value"] == first.bookmark
    stuck_id = deletes(small_sandbox)[-1]
    assert stuck_id not in small_sandbox.tasks
    assert output.records == []


def test_late_indexed_user_is_caught_by_the_next_sync_lookback(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox = sandbox_factory(users=50, seed=3)
    config = sandbox.tap_config(**fast_settings, lookback_minutes=60)
    now = sandbox.clock.now().replace(microsecond=0)
    (late,) = sandbox.add_users(
        1, created_date=now - dt.timedelta(seconds=30), visible_after_seconds=600
    )
    sandbox.add_users(2, created_date=now - dt.timedelta(seconds=5))

    first = sync(config)
    assert late not in first.ids  # not indexed yet: the export missed it
    sandbox.clock.advance(900)
    no_lookback = sync({**config, "lookback_minutes": 0}, state=first.final_state)
    second = sync(config, state=first.final_state)

    assert late not in no_lookback.ids  # without the lookback it would be lost
    assert late in second.ids
    assert first.ids | second.ids == {int(u["id"]) for u in sandbox.users()}


def test_user_with_a_future_created_date_does_not_push_the_bookmark_past_late_indexed_users(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_factory(users=30, seed=5)
    config = sandbox.tap_config(**fast_settings, lookback_minutes=60)
    now = sandbox.clock.now().replace(microsecond=0)
    sandbox.add_users(1, created_date=now + dt.timedelta(hours=3))  # skewed data, e.g. local time
    (late,) = sandbox.add_users(
        1, created_date=now - dt.timedelta(seconds=30), visible_after_seconds=600
    )

    with caplog.at_level(logging.INFO):
        first = sync(config)
    assert first.error is None
    (said,) = [r for r in caplog.records if "holds users created in the future" in r.message]
    assert said.levelno == logging.WARNING
    assert late not in first.ids  # not indexed yet
    assert parse_utc(first.bookmark) <= dt.datetime.now(dt.timezone.utc)
    sandbox.clock.advance(900)
    second = sync(config, state=first.final_state)

    assert second.error is None
    assert late in second.ids


def test_users_created_while_the_sync_ran_stop_the_bookmark_at_its_start_without_a_warning(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_factory(users=30, seed=5)
    config = sandbox.tap_config(**fast_settings, lookback_minutes=0)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    (joined,) = sandbox.add_users(1, created_date=started + dt.timedelta(seconds=3))
    sandbox.inject("task_stuck", seconds=5)  # the export runs until that user has signed up

    with caplog.at_level(logging.INFO):
        first = sync(config)

    assert first.error is None
    assert joined in first.ids
    assert parse_utc(first.bookmark) < started + dt.timedelta(seconds=3)
    (said,) = [r for r in caplog.records if "holds users created after this sync" in r.message]
    assert said.levelno == logging.INFO
    assert "in the future" not in caplog.text
    second = sync(config, state=first.final_state)
    assert joined in second.ids  # read again, since the bookmark stopped before it


def test_user_sharing_the_bookmark_stamp_is_never_lost(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox = sandbox_factory(users=40, seed=4)
    config = sandbox.tap_config(**fast_settings, lookback_minutes=0)
    stamp = sandbox.clock.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    sandbox.add_users(2, created_date=stamp)
    first = sync(config)
    assert first.bookmark is not None
    assert first.bookmark.startswith(stamp.strftime("%Y-%m-%dT%H:%M:%S"))
    (same_second,) = sandbox.add_users(1, created_date=stamp)

    second = sync(config, state=first.final_state)

    assert second.error is None
    assert same_second in second.ids
    assert len(second.records) == len(second.ids)  # each user once per sync
