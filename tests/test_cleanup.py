"""Clean-up: delivered tasks are deleted by default, a failed delete only warns, kept on request."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from tap_spaaza_users.sandbox import Sandbox


def deletes(sandbox: Sandbox) -> list[Any]:
    """The DELETE requests the sandbox answered."""
    return [r for r in sandbox.requests if r.method == "DELETE"]


def test_delivered_task_is_deleted_after_its_records_by_default(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config}
    del config["delete_completed_tasks"]  # the default

    output = sync(config)

    assert output.error is None
    assert small_sandbox.tasks == {}
    (delete,) = deletes(small_sandbox)
    assert delete.status == 204
    assert len(output.records) == len(small_sandbox.users())
    # The bookmark was written before the delete; the last STATE forgets the task.
    flagged = [
        s
        for s in output.states
        if s["bookmarks"]["users"].get("in_flight_task", {}).get("delivered")
    ]
    assert flagged
    assert flagged[-1]["bookmarks"]["users"]["replication_key_value"] == output.bookmark
    assert "in_flight_task" not in output.final_state["bookmarks"]["users"]


def test_tasks_are_kept_when_deletion_is_turned_off(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    output = sync({**fast_config, "delete_completed_tasks": False})

    assert output.error is None
    assert deletes(small_sandbox) == []
    assert len(small_sandbox.tasks) == 1


def test_failed_delete_is_a_warning_not_a_failed_sync(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    small_sandbox.inject("status", status=500, method="DELETE", times=10)

    with caplog.at_level(logging.WARNING):
        output = sync({**fast_config, "delete_completed_tasks": True})

    assert output.error is None
    assert len(output.records) == len(small_sandbox.users())
    assert "Could not delete export task" in caplog.text
    assert fast_config["access_token_secret"] not in caplog.text


def test_task_left_delivered_by_a_killed_run_is_deleted_by_the_next(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    config = {**fast_config, "delete_completed_tasks": True}
    small_sandbox.inject("status", status=500, method="DELETE", times=4)  # every try, once
    first = sync(config)
    (leftover,) = small_sandbox.tasks
    delivered = next(
        s
        for s in first.states
        if s["bookmarks"]["users"].get("in_flight_task", {}).get("delivered")
    )

    second = sync(config, state=delivered)

    assert second.error is None
    assert leftover not in small_sandbox.tasks
    assert small_sandbox.tasks == {}


def test_timed_out_task_is_deleted(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("task_stuck", seconds=30)

    output = sync({**fast_config, "task_timeout_minutes": 0.005})

    assert output.error is not None
    (delete,) = deletes(small_sandbox)
    assert delete.status == 204
    assert small_sandbox.tasks == {}
