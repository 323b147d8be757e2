"""`meltano run` interrupted (SIGTERM while the export runs, a loader failing mid-stream).

Meltano saves a STATE only once the target has flushed records, so the rerun starts with no
state at all; it must find the interrupted run's export task in Spaaza's task list by its tag:
one ``POST /tasks`` across both runs, every user delivered, and in Spaaza only that task,
which the state Meltano saved names as delivered. The next run deletes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT, Meltano, read_jsonl
from .test_meltano_warehouses import postgres  # noqa: F401 - the fixture

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from .test_meltano_warehouses import Postgres

DEADLINE_SECONDS = 120


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (fails after the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def task_creations(sandbox: Sandbox) -> int:
    """How many ``POST /tasks`` the sandbox received."""
    return sum(1 for r in sandbox.requests if r.method == "POST" and r.path == "/tasks")


def delivered_tasks(meltano: Meltano, loader: str) -> list[int]:
    """The tasks named delivered in the state Meltano keeps for the run into ``loader``."""
    state: dict[str, Any] = meltano.state(f"dev:tap-spaaza-users-to-{loader}")
    return list(state["singer_state"]["bookmarks"]["users"]["delivered_tasks"])


def assert_only_the_delivered_task_left(sandbox: Sandbox, meltano: Meltano, loader: str) -> int:
    """Assert Spaaza holds one task, DONE, the one the saved state names delivered; its id."""
    (task_id,) = delivered_tasks(meltano, loader)
    assert set(sandbox.tasks) == {task_id}  # kept: the next run deletes it
    assert sandbox.tasks[task_id].code == "DONE"
    return task_id


@pytest.fixture
def start_run(meltano: Meltano, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `meltano run tap-spaaza-users LOADER` in the background, in its own session.

    Whatever a started run left running is killed after the test.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(loader: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (tmp_path / f"meltano-{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(meltano.executable), "run", "tap-spaaza-users", loader],
                cwd=PROJECT_ROOT,
                env={**meltano.env, **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(DEADLINE_SECONDS)


def interrupt(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to meltano (as a scheduler stopping the job), then to what it left running."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(DEADLINE_SECONDS) != 0
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # plugins Meltano did not stop: the job is over


@pytest.fixture
def busy_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose exports take a few seconds (the interruption lands while INPROGRESS)."""
    with Sandbox(users=2000, seed=12, task_base_seconds=0.0, task_seconds_per_1k_users=0.0) as sb:
        yield sb


def interrupt_while_in_progress(
    sandbox: Sandbox, start_run: Callable[..., subprocess.Popen[bytes]], loader: str
) -> None:
    """Start a run, wait until its export task is INPROGRESS, then SIGTERM it."""
    sandbox.inject("task_stuck", seconds=6)
    run = start_run(loader)
    wait_until(
        lambda: any(task.code == "INPROGRESS" for task in sandbox.tasks.values()),
        "the export task to be INPROGRESS",
    )
    interrupt(run)
    assert task_creations(sandbox) == 1
    assert len(sandbox.tasks) == 1  # the interrupted run's task is still there


def test_sigterm_to_meltano_run_into_jsonl_then_the_rerun_uses_the_same_task(
    meltano: Meltano,
    busy_sandbox: Sandbox,
    start_run: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    meltano.use_sandbox(busy_sandbox)
    interrupt_while_in_progress(busy_sandbox, start_run, "target-jsonl")
    assert "singer_state" not in meltano.state("dev:tap-spaaza-users-to-target-jsonl")

    out = tmp_path / "rerun"
    meltano("run", "tap-spaaza-users", "target-jsonl", extra_env={
        "TARGET_JSONL_DESTINATION_PATH": str(out)})  # fmt: skip

    assert task_creations(busy_sandbox) == 1
    delivered = {record["id"] for record in read_jsonl(out / "users.jsonl")}
    assert delivered == {int(user["id"]) for user in busy_sandbox.users()}
    task_id = assert_only_the_delivered_task_left(busy_sandbox, meltano, "target-jsonl")

    # The next run, given the saved state, deletes it before it exports the new window.
    meltano("run", "tap-spaaza-users", "target-jsonl", extra_env={
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "next")})  # fmt: skip

    assert [(r.path, r.status) for r in busy_sandbox.requests if r.method == "DELETE"] == [
        (f"/tasks/{task_id}", 204)
    ]
    assert task_creations(busy_sandbox) == 2
    (next_task,) = busy_sandbox.tasks
    assert delivered_tasks(meltano, "target-jsonl") == [task_id, next_task]


def test_sigterm_to_meltano_run_into_postgres_then_the_rerun_uses_the_same_task(
    meltano: Meltano,
    busy_sandbox: Sandbox,
    start_run: Callable[..., subprocess.Popen[bytes]],
    postgres: Postgres,  # noqa: F811 - the fixture
) -> None:
    meltano.use_sandbox(busy_sandbox)
    interrupt_while_in_progress(busy_sandbox, start_run, "target-postgres")

    meltano("run", "tap-spaaza-users", "target-postgres")

    assert task_creations(busy_sandbox) == 1
    expected = {int(user["id"]) for user in busy_sandbox.users()}
    ((rows, distinct),) = postgres.query("SELECT count(*), count(DISTINCT id) FROM {table}")
    assert (rows, distinct) == (len(expected), len(expected))
    assert {row[0] for row in postgres.query("SELECT id FROM {table}")} == expected
    assert_only_the_delivered_task_left(busy_sandbox, meltano, "target-postgres")


def test_loader_failing_after_records_then_the_rerun_uses_the_same_task(
    meltano: Meltano,
    start_run: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    with Sandbox(users=20_000, seed=13) as sandbox:
        meltano.use_sandbox(sandbox)
        broken = tmp_path / "broken"
        run = start_run("target-jsonl", {"TARGET_JSONL_DESTINATION_PATH": str(broken)})
        wait_until((broken / "users.jsonl").exists, "the loader's first records")
        # The loader cannot write any more: its folder is now a file (the loader may make the
        # folder again between the removal and the write, so until the file stands).
        while not broken.is_file():
            shutil.rmtree(broken, ignore_errors=True)
            with contextlib.suppress(IsADirectoryError, FileExistsError):
                broken.write_text("not a folder")
        assert run.wait(DEADLINE_SECONDS) != 0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        assert len(sandbox.tasks) == 1  # the failed run's task, kept (no run deletes its own)
        assert [r for r in sandbox.requests if r.method == "DELETE"] == []

        out = tmp_path / "rerun"
        meltano("run", "tap-spaaza-users", "target-jsonl", extra_env={
            "TARGET_JSONL_DESTINATION_PATH": str(out)})  # fmt: skip

        assert task_creations(sandbox) == 1
        delivered = {record["id"] for record in read_jsonl(out / "users.jsonl")}
        assert delivered == {int(user["id"]) for user in sandbox.users()}
        assert_only_the_delivered_task_left(sandbox, meltano, "target-jsonl")
