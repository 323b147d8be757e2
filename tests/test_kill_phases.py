"""Kill the tap process at each phase of a sync; a rerun loses no user and exports nothing twice.

Each test runs twice: the rerun gets the killed run's last STATE, or no state at all (as
Meltano, which saves a STATE only once the target has flushed records); then the rerun finds
the killed run's task in Spaaza's task list by its tag.

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
from tap_cli import (
    DEADLINE_SECONDS,
    TapProcess,
    has_in_flight_state,
    records,
    task_creations,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


@pytest.fixture
def run_tap(tmp_path: Path) -> Iterator[Callable[..., TapProcess]]:
    """Start tap processes that are all stopped after the test."""
    started: list[TapProcess] = []

    def start(config: dict[str, Any], state: dict[str, Any] | None = None) -> TapProcess:
        started.append(TapProcess(tmp_path, config, state))
        return started[-1]

    yield start
    for tap in started:
        if tap.process.poll() is None:
            tap.process.kill()
            tap.process.communicate(timeout=DEADLINE_SECONDS)


@pytest.fixture(params=["state-kept", "state-thrown-away"])
def rerun_state(request: pytest.FixtureRequest) -> str:
    """Whether the rerun gets the killed run's last STATE, or none (as Meltano may)."""
    return str(request.param)


def rerun_and_check(  # noqa: PLR0913 - keyword-only, each a fact of the rerun
    sandbox: Sandbox,
    config: dict[str, Any],
    killed: TapProcess,
    run_tap: Callable[..., TapProcess],
    *,
    reused: bool,
    keep_state: bool,
) -> TapProcess:
    """Rerun (from the last STATE, or none); assert no user is missing, and the reuse."""
    creations = task_creations(sandbox)
    rerun = run_tap(config, killed.last_state if keep_state else None)
    rerun.finish()
    expected = {int(user["id"]) for user in sandbox.users()}
    assert expected - (killed.ids | rerun.ids) == set()
    assert task_creations(sandbox) == creations + (0 if reused else 1)
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
    run_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("task_stuck", seconds=3)
    tap = run_tap(kill_config)
    tap.read_until(has_in_flight_state)
    tap.kill()
    assert tap.ids == set()

    rerun_and_check(
        kill_sandbox, kill_config, tap, run_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


def test_killed_while_polling_the_rerun_keeps_polling_the_same_task(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("task_stuck", seconds=3)
    tap = run_tap(kill_config)
    tap.read_until(has_in_flight_state)
    wait_until(lambda: sum(1 for r in kill_sandbox.requests if r.path == "/tasks/1001") >= 2)
    tap.kill(keep_unread=True)
    assert kill_sandbox.tasks[1001].code == "INPROGRESS"

    rerun_and_check(
        kill_sandbox, kill_config, tap, run_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


def test_killed_mid_download_the_rerun_downloads_the_same_task_again(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    kill_sandbox.inject("slow_download", bytes_per_second=20_000)
    tap = run_tap(kill_config)
    tap.read_until(has_in_flight_state)
    wait_until(lambda: any(r.server == "storage" for r in kill_sandbox.requests))
    time.sleep(0.3)
    tap.kill(keep_unread=True)
    assert tap.ids == set()

    rerun_and_check(
        kill_sandbox, kill_config, tap, run_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_mid_emission_the_rerun_emits_every_user_from_the_same_task(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    signum: int,
    rerun_state: str,
) -> None:
    sandbox = sandbox_factory(users=3000, seed=22)
    config = sandbox.tap_config(**{**fast_settings, "delete_completed_tasks": True})
    tap = run_tap(config)
    tap.read_until(lambda messages: records(messages) >= 1000)
    tap.kill(signum)
    assert 0 < len(tap.ids) < 3000

    rerun_and_check(
        sandbox, config, tap, run_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


def test_killed_after_the_last_record_before_its_state_the_rerun_reuses_the_task(
    kill_sandbox: Sandbox,
    kill_config: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    total = len(kill_sandbox.users())
    # Tasks kept: the process may get as far as the clean-up before the kill lands, and
    # the rerun must still find the task (the stuck-delete test covers the clean-up).
    kill_config = {**kill_config, "delete_completed_tasks": False}
    tap = run_tap(kill_config)
    tap.read_until(lambda messages: records(messages) == total)
    tap.kill()  # whatever followed the last record is lost
    assert tap.last_state is not None
    assert "replication_key_value" not in tap.last_state["bookmarks"]["users"]

    rerun_and_check(
        kill_sandbox, kill_config, tap, run_tap, reused=True, keep_state=rerun_state == "state-kept"
    )


def test_killed_while_deleting_the_delivered_task_the_rerun_deletes_it(
    kill_sandbox: Sandbox,
    fast_settings: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    rerun_state: str,
) -> None:
    config = kill_sandbox.tap_config(
        **{**fast_settings, "delete_completed_tasks": True, "retry_max_wait_seconds": 30}
    )
    kill_sandbox.inject("status", status=503, retry_after=30, method="DELETE")
    tap = run_tap(config)
    tap.read_until(
        lambda messages: any(
            m["type"] == "STATE"
            and m["value"]["bookmarks"]["users"].get("in_flight_task", {}).get("delivered")
            for m in messages
        )
    )
    tap.kill()
    assert tap.last_state is not None
    assert tap.last_state["bookmarks"]["users"]["replication_key_value"]

    # With its state, the rerun deletes the delivered task and exports again; without, it
    # cannot know the file was delivered and delivers that task's file again.
    rerun_and_check(
        kill_sandbox,
        config,
        tap,
        run_tap,
        reused=rerun_state != "state-kept",
        keep_state=rerun_state == "state-kept",
    )
    assert kill_sandbox.tasks == {}  # the leftover and the rerun's own task are both gone


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_sync_stopped_by_a_signal_writes_its_state_and_exits_non_zero(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    run_tap: Callable[..., TapProcess],
    signum: int,
    status: int,
) -> None:
    sandbox = sandbox_factory(users=3000, seed=23)
    config = sandbox.tap_config(**{**fast_settings, "delete_completed_tasks": True})
    tap = run_tap(config)
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

    rerun_and_check(sandbox, config, tap, run_tap, reused=True, keep_state=True)
