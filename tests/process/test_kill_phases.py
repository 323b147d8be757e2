"""Kill the tap process at each phase of a sync; a rerun loses no user and exports nothing twice.

Each test runs twice: the rerun gets the killed run's last STATE, or no state at all (as
Meltano, which saves a STATE only once the target has flushed records); then the rerun finds
the killed run's task in Spaaza's task list by its tag.

A sync never deletes the task it delivered: it names it in its last STATE's
``delivered_tasks`` and keeps it, since the target may still fail to load the rows. So a run
killed after its last STATE leaves the task for a rerun without state to adopt, and the
next sync given that STATE deletes it, in its clean-up before it exports. After every rerun
the tasks left in Spaaza are exactly the ones it delivered, each DONE.

The tap runs as the ``tap-spaaza-users`` command with its standard output on a pipe that
the test reads as a target would, line by line: a tap that writes faster than the test
reads waits on the pipe, so "after N records" is a precise moment. What the test has read
when it kills the process is what a target would have received.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import (
    TapProcess,
    assert_left_are_delivered,
    delivered_tasks,
    has_in_flight_state,
    last_state,
    records,
    task_creations,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox


@pytest.fixture(params=["state-kept", "state-thrown-away"])
def rerun_state(request: pytest.FixtureRequest) -> str:
    """Whether the rerun gets the killed run's last STATE, or none (as Meltano may)."""
    return str(request.param)


def rerun_and_check(  # noqa: PLR0913 - keyword-only, each a fact of the rerun
    sandbox: Sandbox,
    config: dict[str, Any],
    killed: TapProcess,
    start_tap: Callable[..., TapProcess],
    *,
    reused: bool,
    keep_state: bool,
    received: frozenset[int] = frozenset(),
) -> TapProcess:
    """Rerun (from the last STATE, or none); assert no user is missing, the reuse, the tasks.

    ``received`` are users an earlier, whole run delivered. The tasks left are exactly the
    ones the rerun delivered, each DONE: the killed run's were adopted, or deleted by the
    rerun's clean-up when its state named them delivered.
    """
    creations = task_creations(sandbox)
    state = killed.last_state if keep_state else None
    rerun = start_tap(config, state)
    rerun.finish()
    expected = {int(user["id"]) for user in sandbox.users()}
    assert expected - (received | killed.ids | rerun.ids) == set()
    assert task_creations(sandbox) == creations + (0 if reused else 1)
    assert rerun.last_state is not None
    assert_left_are_delivered(sandbox, rerun.last_state, state)
    return rerun


@pytest.fixture
def kill_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """300 users."""
    return sandbox_factory(users=300, seed=21)


@pytest.fixture
def kill_config(kill_sandbox: Sandbox, fast_settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with the default clean-up."""
    return kill_sandbox.tap_config(**{**fast_settings, "delete_completed_tasks": True})


def test_killed_after_task_creation_the_rerun_reuses_the_task(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("task_stuck", seconds=3)
    tap = start_tap(kill_config)
    tap.read_until(has_in_flight_state)
    tap.kill()
    assert tap.ids == set()

    rerun_and_check(
        kill_sandbox,
        kill_config,
        tap,
        start_tap,
        reused=True,
        keep_state=rerun_state == "state-kept",
    )


def test_killed_while_polling_the_rerun_keeps_polling_the_same_task(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("task_stuck", seconds=3)
    tap = start_tap(kill_config)
    tap.read_until(has_in_flight_state)
    wait_until(lambda: sum(1 for r in kill_sandbox.requests if r.path == "/tasks/1001") >= 2)
    tap.kill(keep_unread=True)
    assert kill_sandbox.tasks[1001].code == "INPROGRESS"

    rerun_and_check(
        kill_sandbox,
        kill_config,
        tap,
        start_tap,
        reused=True,
        keep_state=rerun_state == "state-kept",
    )


def test_killed_mid_download_the_rerun_downloads_the_same_task_again(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("slow_download", bytes_per_second=20_000)
    tap = start_tap(kill_config)
    tap.read_until(has_in_flight_state)
    wait_until(lambda: any(r.server == "storage" for r in kill_sandbox.requests))
    time.sleep(0.3)
    tap.kill(keep_unread=True)
    assert tap.ids == set()

    rerun_and_check(
        kill_sandbox,
        kill_config,
        tap,
        start_tap,
        reused=True,
        keep_state=rerun_state == "state-kept",
    )


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_mid_emission_the_rerun_emits_every_user_from_the_same_task(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    signum: int,
    rerun_state: str,
) -> None:
    sandbox = sandbox_factory(users=3000, seed=22)
    config = sandbox.tap_config(**{**fast_settings, "delete_completed_tasks": True})
    tap = start_tap(config)
    tap.read_until(lambda messages: records(messages) >= 1000)
    tap.kill(signum)
    assert 0 < len(tap.ids) < 3000

    rerun_and_check(
        sandbox, config, tap, start_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


def test_killed_after_the_last_record_before_its_state_the_rerun_reuses_the_task(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    total = len(kill_sandbox.users())
    tap = start_tap(kill_config)  # the clean-up on: the task is kept all the same
    tap.read_until(lambda messages: records(messages) == total)
    tap.kill()  # whatever followed the last record is lost
    assert tap.last_state is not None
    assert "replication_key_value" not in tap.last_state["bookmarks"]["users"]
    assert [r for r in kill_sandbox.requests if r.method == "DELETE"] == []
    assert kill_sandbox.tasks[1001].code == "DONE"

    rerun_and_check(
        kill_sandbox,
        kill_config,
        tap,
        start_tap,
        reused=True,
        keep_state=rerun_state == "state-kept",
    )


def test_killed_after_its_last_state_the_task_is_kept_and_the_rerun_deletes_or_adopts_it(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    tap = start_tap(kill_config)
    tap.read_until(lambda messages: 1001 in delivered_tasks(last_state(messages)))
    tap.kill()  # after the STATE naming the task delivered: nothing of the sync is left
    assert tap.ids == {int(user["id"]) for user in kill_sandbox.users()}
    assert tap.last_state is not None
    assert tap.last_state["bookmarks"]["users"]["replication_key_value"]
    assert [r for r in kill_sandbox.requests if r.method == "DELETE"] == []
    assert assert_left_are_delivered(kill_sandbox, tap.last_state) == {1001}

    # With its state, the rerun deletes the delivered task before it exports the window
    # after the bookmark; without, it adopts the kept task and delivers its file again.
    keep = rerun_state == "state-kept"
    rerun_and_check(kill_sandbox, kill_config, tap, start_tap, reused=not keep, keep_state=keep)
    deletes = [(r.path, r.status) for r in kill_sandbox.requests if r.method == "DELETE"]
    assert deletes == ([("/tasks/1001", 204)] if keep else [])


def test_killed_while_the_next_sync_deletes_the_delivered_task_the_rerun_deletes_it(
    kill_sandbox: Sandbox,
    fast_settings: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    config = kill_sandbox.tap_config(
        **{**fast_settings, "delete_completed_tasks": True, "retry_max_wait_seconds": 30}
    )
    first = start_tap(config)
    first.finish()
    assert first.last_state is not None
    assert delivered_tasks(first.last_state) == [1001]
    # The next sync's clean-up: its DELETE gets a 503 asking to wait 30 s (Retry-After).
    kill_sandbox.inject("status", status=503, retry_after=30, method="DELETE")
    tap = start_tap(config, first.last_state)
    tap.read_until(lambda messages: last_state(messages) is not None)
    wait_until(lambda: any(r.method == "DELETE" for r in kill_sandbox.requests))
    tap.kill()
    assert tap.last_state == first.last_state  # the state it started from, nothing more
    assert [(r.path, r.status) for r in kill_sandbox.requests if r.method == "DELETE"] == [
        ("/tasks/1001", 503)
    ]
    assert set(kill_sandbox.tasks) == {1001}

    # With that state, the rerun deletes the task and exports after the bookmark; without
    # (the state cleared), it adopts the task and delivers its file again.
    keep = rerun_state == "state-kept"
    rerun_and_check(
        kill_sandbox,
        config,
        tap,
        start_tap,
        reused=not keep,
        keep_state=keep,
        received=frozenset(first.ids),
    )
    assert (1001 in kill_sandbox.tasks) is not keep


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_sync_stopped_by_a_signal_writes_its_state_and_exits_non_zero(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    signum: int,
    status: int,
) -> None:
    sandbox = sandbox_factory(users=3000, seed=23)
    config = sandbox.tap_config(**{**fast_settings, "delete_completed_tasks": True})
    tap = start_tap(config)
    tap.read_until(lambda messages: records(messages) >= 500)
    tap.kill(signum, keep_unread=True)

    assert tap.process.returncode == status
    assert tap.last_state is not None  # the state as it stood (the SDK writes it if changed)
    users_state = tap.last_state["bookmarks"]["users"]
    assert users_state["in_flight_task"]["id"] == 1001
    assert "replication_key_value" not in users_state
    stderr = tap.stderr_path.read_text()
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1
    assert f"Stopped by {signal.Signals(signum).name}" in errors[0]
    assert f"exiting with status {status}" in errors[0]

    rerun_and_check(sandbox, config, tap, start_tap, reused=True, keep_state=True)
