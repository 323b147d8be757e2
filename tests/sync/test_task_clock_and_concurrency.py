"""Task ages on Spaaza's clock, and two runs of the same settings sharing their tasks."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from support.tap_cli import FAST_SETTINGS
from test_task_journal import all_ids, posts, unfinished_task_of_the_tap

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.errors import SpaazaTaskTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest
    from support.tap_cli import SyncOutput, TapProcess

    from tap_spaaza_users.sandbox import Sandbox


def test_a_task_clock_hours_behind_never_makes_a_fresh_task_look_abandoned(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    small_sandbox.inject("task_clock_lag", seconds=4 * 3600, times=100)
    left = unfinished_task_of_the_tap(  # a killed run's task, 0 s old, dated 4 h ago
        small_sandbox, fast_config, sync, "INPROGRESS", stuck_seconds=2
    )
    config = {**fast_config, "delete_completed_tasks": True, "task_timeout_minutes": 60}

    with caplog.at_level(logging.INFO):
        rerun = sync(config)  # no state: the killed run's STATE was never saved

    assert rerun.error is None
    assert rerun.ids == all_ids(small_sandbox)
    assert left in small_sandbox.tasks  # not deleted as abandoned
    assert rerun.final_state["bookmarks"]["users"]["delivered_tasks"] == [left]
    # Its own task, created before Spaaza's clock was read, yielded to the fresh one at once.
    assert len(posts(small_sandbox)) == 1
    (delete,) = [r for r in small_sandbox.requests if r.method == "DELETE"]
    assert delete.path != f"/tasks/{left}"
    assert set(small_sandbox.tasks) == {left}
    assert f"Deleted export task {left}" not in caplog.text
    assert f"Adopting export task {left} of another run" in caplog.text


def test_two_runs_started_a_second_apart_adopt_each_others_tasks(
    sandbox_factory: Callable[..., Sandbox],
    start_tap: Callable[..., TapProcess],
) -> None:
    sandbox = sandbox_factory(users=120, seed=7, task_base_seconds=0.5)
    start = sandbox.clock.now() - dt.timedelta(days=24)
    config = sandbox.tap_config(
        **FAST_SETTINGS, start_date=start.isoformat(), backfill_window_days=1
    )
    windows = 25

    first = start_tap(config)
    time.sleep(1)
    second = start_tap(config)
    first.finish()
    second.finish()

    since = {
        int(user["id"]) for user in sandbox.users() if parse_utc(user["created_date"]) >= start
    }
    assert first.ids == second.ids == since
    created = len(posts(sandbox))
    # A run that created a window's task at the same moment as the other deletes its own
    # at once (the newer yields to the older): what stays is one export per window.
    yielded = len([r for r in sandbox.requests if r.method == "DELETE"])
    assert created - yielded <= windows + 1, f"{created - yielded} exports for {windows} windows"
    for run in (first, second):
        assert "the task is gone" not in run.stderr_path.read_text()


def test_a_timeout_on_a_task_another_run_created_never_deletes_it(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    left = unfinished_task_of_the_tap(  # another live run's task, stuck for a while
        small_sandbox, fast_config, sync, "INPROGRESS", stuck_seconds=60
    )

    adopter = sync({**fast_config, "task_timeout_minutes": 0.05})

    assert isinstance(adopter.error, SpaazaTaskTimeoutError)
    assert "left for the run that created it" in str(adopter.error)
    assert left in small_sandbox.tasks  # the run that created it may still be waiting
    assert not [r for r in small_sandbox.requests if r.method == "DELETE"]
    assert posts(small_sandbox) == []  # adopted, not exported twice
