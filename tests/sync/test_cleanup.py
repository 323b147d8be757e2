"""Clean-up: a delivered task is kept until the next sync, which deletes it (by default).

The sync that delivers a task's file has only handed the rows to the target, which may
still fail to load them; so it names the task in its STATE's ``delivered_tasks`` and keeps
it, for a rerun to adopt. The next sync, given that state, deletes the tasks it names. A
failed delete only warns (the next sync tries again); with ``delete_completed_tasks`` off,
nothing is deleted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from support.tap_cli import assert_left_are_delivered, delivered_tasks

from tap_spaaza_users.state import tasks as state

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from tap_spaaza_users.sandbox import Sandbox


def deletes(sandbox: Sandbox) -> list[Any]:
    """The DELETE requests the sandbox answered."""
    return [r for r in sandbox.requests if r.method == "DELETE"]


def deleted_ids(sandbox: Sandbox) -> list[int]:
    """The task ids of the DELETE requests, oldest first."""
    return [int(r.path.rsplit("/", 1)[1]) for r in deletes(sandbox)]


def test_delivered_task_is_kept_by_its_sync_and_deleted_by_the_next_by_default(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config}
    del config["delete_completed_tasks"]  # the default

    first = sync(config)

    assert first.error is None
    assert len(first.records) == len(small_sandbox.users())
    assert deletes(small_sandbox) == []  # the target may still fail to load the rows
    assert assert_left_are_delivered(small_sandbox, first.final_state) == {1001}
    # The task is named delivered only in the STATE that carries its window's bookmark.
    naming = [s for s in first.states if 1001 in delivered_tasks(s)]
    assert naming
    assert naming[0]["bookmarks"]["users"]["replication_key_value"] == first.bookmark
    assert "in_flight_task" not in first.final_state["bookmarks"]["users"]

    second = sync(config, state=first.final_state)

    assert second.error is None
    (delete,) = deletes(small_sandbox)
    assert delete.path == "/tasks/1001"
    assert delete.status == 204
    *_, creation = (r for r in small_sandbox.requests if r.method == "POST")
    assert small_sandbox.requests.index(delete) < small_sandbox.requests.index(creation)
    assert assert_left_are_delivered(small_sandbox, second.final_state, first.final_state) == {1002}


def test_tasks_are_kept_when_deletion_is_turned_off(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config, "delete_completed_tasks": False}
    first = sync(config)
    assert first.error is None

    second = sync(config, state=first.final_state)

    assert second.error is None
    assert deletes(small_sandbox) == []
    assert set(small_sandbox.tasks) == {1001, 1002}
    assert delivered_tasks(second.final_state) == [1001, 1002]


def test_failed_delete_is_a_warning_not_a_failed_sync(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**fast_config, "delete_completed_tasks": True}
    first = sync(config)
    assert first.error is None
    new = set(small_sandbox.add_users(3))
    small_sandbox.inject("status", status=500, method="DELETE", times=10)

    with caplog.at_level(logging.WARNING):
        second = sync(config, state=first.final_state)  # its clean-up deletes the first's task

    assert second.error is None
    assert new <= second.ids
    assert second.bookmark is not None
    assert second.bookmark > str(first.bookmark)
    assert set(deleted_ids(small_sandbox)) == {1001}  # tried, and refused every time
    assert "Could not delete export task 1001 (its file was delivered)" in caplog.text
    assert fast_config["access_token_secret"] not in caplog.text
    assert set(small_sandbox.tasks) == {1001, 1002}


def test_task_whose_delete_failed_is_deleted_by_the_sync_after(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config, "delete_completed_tasks": True}
    first = sync(config)
    small_sandbox.inject("status", status=500, method="DELETE", times=4)  # every try, once
    second = sync(config, state=first.final_state)
    assert second.error is None
    assert 1001 in small_sandbox.tasks
    assert delivered_tasks(second.final_state) == [1001, 1002]  # still named: tried again

    third = sync(config, state=second.final_state)

    assert third.error is None
    assert {1001, 1002} <= set(deleted_ids(small_sandbox))
    assert [d.status for d in deletes(small_sandbox)][-2:] == [204, 204]
    assert assert_left_are_delivered(small_sandbox, third.final_state, second.final_state) == {1003}


def test_timed_out_task_is_deleted(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("task_stuck", seconds=30)

    output = sync({**fast_config, "task_timeout_minutes": 0.005})

    assert output.error is not None
    (delete,) = deletes(small_sandbox)
    assert delete.status == 204
    assert small_sandbox.tasks == {}


def test_the_state_names_only_the_latest_delivered_tasks_however_long_the_backfill() -> None:
    # The next sync deletes a long backfill's tasks from their tags (window end, selection):
    # see test_task_hygiene. The state names only the latest few (the open-ended windows).
    users_state: dict[str, Any] = {}
    for task_id in range(1001, 1001 + 21 * 12):  # 21 years of monthly windows
        state.note_delivered(users_state, task_id)

    kept = state.DELIVERED_TASKS_KEPT
    assert state.delivered_tasks(users_state) == list(range(1001 + 21 * 12 - kept, 1001 + 21 * 12))
    state.note_delivered(users_state, 1001)  # named again: moves to the end, once
    assert state.delivered_tasks(users_state).count(1001) == 1
    assert state.delivered_tasks(users_state)[-1] == 1001
