"""Spaaza's task list as the journal: tagged tasks adopted, created once, swept; state identity."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from support.tap_cli import assert_left_are_delivered, run_tap

from tap_spaaza_users.export import build_export_task
from tap_spaaza_users.tap import TapSpaazaUsers
from tap_spaaza_users.tasks.listing import PAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.api.client import SpaazaClient
    from tap_spaaza_users.sandbox import Sandbox

#: The tag: task key, selection key and window end (``open``: up to the export's run).
TAG = re.compile(r" \[tap-spaaza-users:[0-9a-f]{16}:[0-9a-f]{16}:(\d{8}T\d{6}Z|open)\]$")
HIGH_RFM = {"field_name": "overall", "field_type": "number", "operator": "is_between_number",
            "min": 4, "max": 5}  # fmt: skip


def posts(sandbox: Sandbox) -> list[Any]:
    """The ``POST /tasks`` requests the sandbox received, oldest first."""
    return [r for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]


def all_ids(sandbox: Sandbox) -> set[int]:
    """Every sandbox user's id."""
    return {int(user["id"]) for user in sandbox.users()}


@contextlib.contextmanager
def api_client(config: dict[str, Any]) -> Iterator[SpaazaClient]:
    """The tap's own Tasks API client, for a test to act as another party would."""
    tap = TapSpaazaUsers(config=config, parse_env_config=False)
    with contextlib.closing(tap.make_client()) as client:
        yield client


def untagged_task(config: dict[str, Any], *, once: dt.datetime | None = None) -> int:
    """Create an export task as someone in Console would: no tag in its description."""
    body = build_export_task(
        chain_id=config["chain_id"],
        window_start=None,
        now=once or dt.datetime.now(dt.timezone.utc),
        origin="made in Console",
    )
    with api_client(config) as client:
        return int(client.create_task(body)["id"])


def backdate(sandbox: Sandbox, task_id: int, age: dt.timedelta) -> None:
    """Make a task ``age`` old, through the sandbox's control namespace."""
    created = (dt.datetime.now(dt.timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = requests.patch(
        f"{sandbox.url}/_sandbox/tasks/{task_id}", json={"created_date": created}, timeout=10
    )
    assert response.status_code == 200, response.text


def unfinished_task_of_the_tap(
    sandbox: Sandbox,
    config: dict[str, Any],
    sync: Callable[..., Any],
    code: str,
    stuck_seconds: float = 60,
) -> int:
    """The task a run would create for a first sync, left unfinished as a killed run would.

    A first sync shows the tagged body; its DONE task is deleted, and the same body is sent
    again, either scheduled far ahead (it stays READY) or stuck in its export, reporting
    INPROGRESS or ``code`` (an undocumented state, such as QUEUED).
    """
    assert sync(config).error is None
    (done,) = sandbox.tasks
    body = posts(sandbox)[0].json
    if code == "READY":
        body["trigger"]["once"] = "2099-01-01T00:00:00Z"
    elif code == "INPROGRESS":
        sandbox.inject("task_stuck", seconds=stuck_seconds)
    else:
        sandbox.inject("task_stuck", seconds=stuck_seconds, code=code)
    with api_client(config) as client:
        client.delete_task(done)
        task_id = int(client.create_task(body)["id"])
    deadline = time.monotonic() + 10
    while sandbox.tasks[task_id].state["code"] != code:
        assert time.monotonic() < deadline, f"task {task_id} never became {code}"
        time.sleep(0.02)
    sandbox.request_log.clear()
    return task_id


def wait_finished(sandbox: Sandbox, task_id: int) -> None:
    """Wait until a sandbox task is DONE or ERROR."""
    deadline = time.monotonic() + 10
    while sandbox.tasks[task_id].code not in {"DONE", "ERROR"}:
        assert time.monotonic() < deadline, f"task {task_id} never finished"
        time.sleep(0.02)


# The tag and adoption


def test_task_description_is_readable_and_ends_with_the_tap_tag(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    since = {**fast_config, "start_date": "2020-01-01T00:00:00Z"}

    assert sync(fast_config).error is None
    assert sync(since).error is None

    everyone, windowed = (post.json["desc"] for post in posts(small_sandbox))
    assert everyone.startswith("tap-spaaza-users ")
    assert "all users" in everyone
    assert "since 2020-01-01T00:00:00Z" in windowed
    assert TAG.search(everyone)
    assert TAG.search(windowed)
    assert TAG.search(everyone).group() != TAG.search(windowed).group()  # type: ignore[union-attr]


@pytest.mark.parametrize("clean_up", ["off", "on"])
def test_rerun_without_state_adopts_the_done_task_instead_of_exporting_again(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any], clean_up: str
) -> None:
    # With the clean-up on too: the sync that delivered the task keeps it, since the target
    # may fail to load the rows and Meltano then keeps no newer state.
    config = {**fast_config, "delete_completed_tasks": clean_up == "on"}
    first = sync(config)
    assert first.error is None

    rerun = sync(config)  # its state thrown away, as Meltano does when the target failed

    assert rerun.error is None
    assert len(posts(small_sandbox)) == 1
    assert rerun.ids == all_ids(small_sandbox)
    assert rerun.final_state["bookmarks"]["users"]["delivered_tasks"] == [1001]
    assert assert_left_are_delivered(small_sandbox, rerun.final_state) == {1001}


def test_task_whose_file_a_recorded_sync_delivered_is_not_adopted_again(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    start = small_sandbox.clock.now().replace(microsecond=0) - dt.timedelta(seconds=30)
    config = {**fast_config, "start_date": start.isoformat()}
    empty = sync(config)
    assert empty.error is None
    assert empty.records == []
    assert empty.bookmark is None  # the bookmark stays: the next sync asks for the same window
    new = set(small_sandbox.add_users(3))

    second = sync(config, state=empty.final_state)

    assert second.error is None
    first_body, second_body = (post.json for post in posts(small_sandbox))
    assert TAG.search(first_body["desc"]).group() == TAG.search(second_body["desc"]).group()  # type: ignore[union-attr]
    assert second.ids == new


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 502},  # created, then a 5xx instead of the answer
        {"hold_seconds": 2, "then": "answer"},  # created, the answer too late: read timeout
        {"then": "drop"},  # created, then the connection dropped
    ],
    ids=["5xx", "read-timeout", "dropped"],
)
def test_task_created_but_its_answer_lost_is_found_and_used_not_created_twice(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
) -> None:
    timeout = 1 if "hold_seconds" in fault else 5
    config = {**fast_config, "delete_completed_tasks": True, "request_timeout_seconds": timeout}
    small_sandbox.inject("answer_lost", method="POST", path="/tasks", **fault)

    with caplog.at_level(logging.INFO):
        output = sync(config)

    assert output.error is None
    deadline = time.monotonic() + 10  # a late answer is logged once the sandbox sent it
    while not posts(small_sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(posts(small_sandbox)) == 1  # one task for the window
    assert output.ids == all_ids(small_sandbox)
    # and none left behind but that one, kept for the next sync's clean-up
    assert assert_left_are_delivered(small_sandbox, output.final_state) == {1001}
    assert "Export task 1001 was created after all; using it" in caplog.text


# The sweep


def test_sweep_deletes_the_taps_failed_and_old_tasks_and_never_an_untagged_one(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    since = {**fast_config, "start_date": "2020-01-01T00:00:00Z"}
    assert sync(since).error is None  # leaves its DONE task (deletion off)
    small_sandbox.inject("task_error")
    assert sync({**since, "start_date": "2021-01-01T00:00:00Z"}).error is not None
    small_sandbox.inject("task_error")
    foreign = {untagged_task(fast_config), untagged_task(fast_config)}
    for task_id in foreign:
        wait_finished(small_sandbox, task_id)
    assert {t.code for t in small_sandbox.tasks.values()} == {"DONE", "ERROR"}

    with caplog.at_level(logging.INFO):
        output = sync({**fast_config, "delete_completed_tasks": True, "task_reuse_hours": 0})

    assert output.error is None
    left = set(small_sandbox.tasks) - foreign
    assert left == set(output.final_state["bookmarks"]["users"]["delivered_tasks"]) == {1005}
    assert small_sandbox.tasks[1005].code == "DONE"  # this sync's own, kept for the next one
    assert "Clean-up: deleted 2 export tasks this tap had left: 1002, 1001" in caplog.text
    assert "Deleted export task 1002: left in ERROR by an earlier run" in caplog.text
    assert "Deleted export task 1001: finished more than 0 hours ago" in caplog.text


def test_sweep_keeps_a_recent_done_task_of_another_window_for_its_rerun(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    since = {**fast_config, "start_date": "2020-01-01T00:00:00Z"}
    assert sync(since).error is None
    left = set(small_sandbox.tasks)

    output = sync({**fast_config, "delete_completed_tasks": True})

    assert output.error is None
    delivered = set(output.final_state["bookmarks"]["users"]["delivered_tasks"])
    assert delivered.isdisjoint(left)  # another window: a task of its own
    assert set(small_sandbox.tasks) == left | delivered


# Unfinished tasks: adopted while a run could still be waiting for them, abandoned after


@pytest.mark.parametrize("code", ["READY", "INPROGRESS", "QUEUED"])
def test_unfinished_task_older_than_the_task_timeout_is_swept_and_replaced_never_adopted(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    # A short timeout: were the stale task adopted, the rerun would fail after 6 s, not hang.
    config = {**fast_config, "task_timeout_minutes": 0.1, "delete_completed_tasks": True}
    stale = unfinished_task_of_the_tap(small_sandbox, fast_config, sync, code)
    backdate(small_sandbox, stale, dt.timedelta(minutes=90))  # past the timeout, within 24 h
    foreign = untagged_task(fast_config, once=dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc))
    backdate(small_sandbox, foreign, dt.timedelta(days=3))
    small_sandbox.request_log.clear()

    with caplog.at_level(logging.INFO):
        rerun = sync(config)  # no state: the killed run's STATE was never saved

    assert rerun.error is None
    assert len(posts(small_sandbox)) == 1  # a new task, not a wait on the stuck one
    assert rerun.ids == all_ids(small_sandbox)
    (new,) = rerun.final_state["bookmarks"]["users"]["delivered_tasks"]
    assert new != stale
    assert set(small_sandbox.tasks) == {foreign, new}  # the new one kept for the next sync
    assert small_sandbox.tasks[foreign].code == "READY"
    assert small_sandbox.tasks[new].code == "DONE"
    assert (
        f"Deleted export task {stale}: {code} for more than 0.1 minutes (task_timeout_minutes), "
        "abandoned by an earlier run" in caplog.text
    )
    assert f"Clean-up: deleted 1 export tasks this tap had left: {stale}" in caplog.text


@pytest.mark.parametrize("code", ["INPROGRESS", "QUEUED"])  # QUEUED: a code not documented
def test_unfinished_task_younger_than_the_task_timeout_is_adopted_whatever_task_reuse_hours(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any], code: str
) -> None:
    config = {**fast_config, "task_timeout_minutes": 60, "task_reuse_hours": 0}
    left = unfinished_task_of_the_tap(  # its export ends while the rerun waits
        small_sandbox, fast_config, sync, code, stuck_seconds=2
    )
    backdate(small_sandbox, left, dt.timedelta(minutes=45))

    rerun = sync({**config, "delete_completed_tasks": True})

    assert rerun.error is None
    assert posts(small_sandbox) == []
    assert rerun.ids == all_ids(small_sandbox)
    assert rerun.final_state["bookmarks"]["users"]["delivered_tasks"] == [left]
    assert assert_left_are_delivered(small_sandbox, rerun.final_state) == {left}


def test_task_in_flight_in_an_undocumented_state_is_waited_for_not_replaced(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    small_sandbox.inject("task_stuck", seconds=3, code="QUEUED")
    small_sandbox.inject("status", status=400, method="GET", path="/tasks/1001")
    first = sync(fast_config)  # its first status check fails: the task stays in flight
    assert first.error is not None
    assert first.final_state["bookmarks"]["users"]["in_flight_task"]["id"] == 1001
    assert small_sandbox.tasks[1001].state["code"] == "QUEUED"
    small_sandbox.request_log.clear()

    with caplog.at_level(logging.INFO):
        rerun = sync(fast_config, state=first.final_state)

    assert rerun.error is None
    assert posts(small_sandbox) == []  # waited for, not superseded by a new task
    assert rerun.ids == all_ids(small_sandbox)
    assert rerun.final_state["bookmarks"]["users"]["delivered_tasks"] == [1001]
    assert "Export task 1001 of the interrupted run is QUEUED" in caplog.text
    assert caplog.text.count("reports an unknown state 'QUEUED'") == 1


def test_abandoned_task_is_left_alone_but_not_adopted_when_the_clean_up_is_off(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**fast_config, "task_timeout_minutes": 0.1}  # delete_completed_tasks: false
    stale = unfinished_task_of_the_tap(small_sandbox, fast_config, sync, "READY")
    backdate(small_sandbox, stale, dt.timedelta(hours=5))

    with caplog.at_level(logging.INFO):
        rerun = sync(config)

    assert rerun.error is None
    assert len(posts(small_sandbox)) == 1
    assert rerun.ids == all_ids(small_sandbox)
    assert small_sandbox.tasks[stale].code == "READY"
    assert (
        f"Not adopting export task {stale} for this window: READY for more than 0.1 minutes "
        "(task_timeout_minutes), abandoned by an earlier run" in caplog.text
    )
    assert "Deleted export task" not in caplog.text


def test_a_task_list_that_ignores_offset_is_read_once_with_a_warning_not_forever(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    far = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    with api_client(fast_config) as client:  # a full page of someone else's tasks
        for _ in range(PAGE_SIZE):
            client.create_task(build_export_task(
                chain_id=fast_config["chain_id"], window_start=None, now=far, origin="Console"
            ))  # fmt: skip
    small_sandbox.inject("ignore_offset", method="GET", path="/tasks", times=3)
    small_sandbox.request_log.clear()

    with caplog.at_level(logging.INFO):
        output = sync(fast_config)

    assert output.error is None
    assert output.ids == all_ids(small_sandbox)
    assert (
        f"GET /tasks at offset {PAGE_SIZE} listed only tasks already read (is offset ignored "
        "on the way?); the task list stops there" in caplog.text
    )


# What the state belongs to


def test_state_of_another_chain_is_a_clear_error_before_any_request(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any], tmp_path: Path
) -> None:
    first = sync(fast_config)
    assert first.final_state["bookmarks"]["users"]["chain_id"] == small_sandbox.chain_id
    small_sandbox.request_log.clear()
    other_chain = {
        **fast_config,
        "chain_id": small_sandbox.other_chain_id,
        "access_token_id": small_sandbox.other_token_id,
        "access_token_secret": small_sandbox.other_token_secret,
    }

    run = run_tap(tmp_path, other_chain, state=first.final_state)

    assert run.returncode == 1
    assert small_sandbox.requests == []
    assert run.records == []
    error = run.error
    assert f"The state belongs to chain {small_sandbox.chain_id}" in error
    assert f"chain_id is {small_sandbox.other_chain_id}" in error
    assert "meltano state clear" in error


def test_changed_segment_exports_the_new_selection_from_start_date_with_one_warning(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    narrow = sync({**fast_config, "segment_rules": [HIGH_RFM]})
    assert narrow.error is None
    assert 0 < len(narrow.ids) < small_sandbox.user_count()

    with caplog.at_level(logging.WARNING):
        wide = sync(fast_config, state=narrow.final_state)  # the rule removed

    assert wide.error is None
    assert wide.ids == all_ids(small_sandbox)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "segment settings" in warning.getMessage()
    assert "exported from start_date" in warning.getMessage()
    rule = posts(small_sandbox)[-1].json["trigger"].get("segment")
    assert rule is None  # all history, no created_date rule from the old bookmark


def test_state_written_before_identity_was_kept_is_accepted(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = sync({**fast_config, "lookback_minutes": 0})
    old = first.final_state
    users = old["bookmarks"]["users"]
    for key in ("chain_id", "selection", "delivered_tasks"):
        users.pop(key)
    new = set(small_sandbox.add_users(2))

    with caplog.at_level(logging.WARNING):
        second = sync({**fast_config, "lookback_minutes": 0}, state=old)

    assert second.error is None
    assert new <= second.ids
    assert len(second.ids) < small_sandbox.user_count()  # incremental from the old bookmark
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    kept = second.final_state["bookmarks"]["users"]
    assert kept["chain_id"] == small_sandbox.chain_id
    assert kept["selection"]
