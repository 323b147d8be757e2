"""No task wedges a sync: storage refusing Range, a file gone for good, a corrupt file."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox


def storage_gets(sandbox: Sandbox) -> list[Any]:
    """The storage requests the sandbox answered, oldest first."""
    return [r for r in sandbox.requests if r.server == "storage"]


def test_storage_refusing_every_range_request_is_retried_once_without_range(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    small_sandbox.inject("drop_connection", after_bytes=5000)
    small_sandbox.inject("range_forbidden", times=100)

    with caplog.at_level(logging.INFO):
        output = sync(fast_config)

    assert output.error is None
    assert output.ids == {int(user["id"]) for user in small_sandbox.users()}
    statuses = [(r.headers.get("Range"), r.status) for r in storage_gets(small_sandbox)]
    assert statuses == [(None, 200), ("bytes=5000-", 403), (None, 200)]
    assert caplog.text.count("storage refused a Range request (HTTP 403)") == 1


def gave_up(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The WARNING lines giving a task up."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "(deleted, never adopted again)" in r.getMessage()
    ]


def all_ids(sandbox: Sandbox) -> set[int]:
    """Every sandbox user's id."""
    return {int(user["id"]) for user in sandbox.users()}


@pytest.mark.parametrize(
    ("fault", "params", "said"),
    [
        ("file_expired", {"times": 100}, "storage answered HTTP 404 (NoSuchKey): the file is gone"),
        ("status", {"status": 404, "path": "/tasks/1001/download_url", "times": 100},
         "Export task 1001 is DONE, but GET /tasks/1001/download_url answers HTTP 404"),
        ("status", {"status": 410, "path": "/tasks/1001/download_url", "times": 100},
         "answers HTTP 410: its file cannot be obtained"),
        ("corrupt_body", {"times": 2}, "the file is corrupt"),
    ],
    ids=["storage-404", "download_url-404", "download_url-410", "md5-never-matches"],
)  # fmt: skip
def test_a_task_whose_file_cannot_be_obtained_is_given_up_and_the_window_exported_afresh(  # noqa: PLR0913, PLR0917
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
    fault: str,
    params: dict[str, Any],
    said: str,
) -> None:
    small_sandbox.inject(fault, **params)
    if fault == "file_expired":  # only the first task's file is gone
        small_sandbox.clear_faults()
        small_sandbox.inject(fault, path="*/User_Export-1001.csv", **params)

    with caplog.at_level(logging.INFO):
        output = sync(fast_config)

    assert output.error is None
    assert output.ids == all_ids(small_sandbox)
    assert 1001 not in small_sandbox.tasks  # deleted
    assert set(small_sandbox.tasks) == {1002}  # the fresh export, kept until the next sync
    (warning,) = gave_up(caplog)
    assert said in warning
    assert "the task is gone" not in caplog.text
    state = output.final_state["bookmarks"]["users"]
    assert state["given_up_tasks"] == [1001]
    assert "in_flight_task" not in state


def test_a_file_gone_at_every_try_fails_the_run_and_the_next_run_exports_afresh(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = sync(fast_config)
    (new_id,) = small_sandbox.add_users(1)
    small_sandbox.inject("file_expired", times=100)

    with caplog.at_level(logging.INFO):
        failed = sync(fast_config, state=first.final_state)

    assert failed.error is not None
    assert "the file is gone" in str(failed.error)
    assert len(gave_up(caplog)) == 2  # the task, then the fresh one
    state = failed.final_state["bookmarks"]["users"]
    assert "in_flight_task" not in state
    assert state["replication_key_value"] == first.bookmark
    small_sandbox.clear_faults()
    posts_before = len([r for r in small_sandbox.requests if r.method == "POST"])

    rerun = sync(fast_config, state=failed.final_state)

    assert rerun.error is None
    assert new_id in rerun.ids
    assert len([r for r in small_sandbox.requests if r.method == "POST"]) == posts_before + 1


def test_an_in_flight_task_older_than_task_reuse_hours_is_not_reused(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
) -> None:
    first = sync(fast_config)
    small_sandbox.inject("status", status=500, path="/tasks/*/download_url", times=100)
    failed = sync(fast_config, state=first.final_state)
    assert failed.error is not None
    state = copy.deepcopy(failed.final_state)
    entry = state["bookmarks"]["users"]["in_flight_task"]
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    entry["created_at"] = old.isoformat()
    small_sandbox.clear_faults()

    rerun = sync(fast_config, state=state)

    assert rerun.error is None
    assert entry["id"] not in small_sandbox.tasks  # deleted, not reused
    assert max(small_sandbox.tasks) > entry["id"]  # exported afresh
