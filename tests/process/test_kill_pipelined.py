"""Kill a pipelined backfill at each phase; the rerun loses no user and exports no window twice.

The backfill has five windows (``backfill_window_days``) of about 120 users each, and the
default ``max_tasks_in_flight`` of 2: while one window's task is awaited, downloaded and
emitted, the next window's task already runs in Spaaza. The tap runs as a process whose
output the test reads as a target would (``support.tap_cli.TapProcess``), and each test kills it
with SIGKILL at one phase of that pipeline. Phases are made exact by what the sandbox has
recorded and what the test has read, never by sleeping: a window's RECORD messages (about
180 kB) are more than the pipe holds, so a tap whose output is not read waits mid-window; a
task the tap creates is in the sandbox before its answer (held by an ``answer_lost`` fault)
reaches the tap; a 429 with ``Retry-After`` parks the tap before a request it must repeat.

A sync never deletes a task it delivered (``delete_completed_tasks`` is on): it names it in
the STATE's ``delivered_tasks`` and keeps it, since the target may still fail to load the
rows; the next sync given that STATE deletes it in its clean-up, before it exports. The last
test kills that next sync during its clean-up.

Each test runs twice: the rerun gets the killed run's last STATE read, or none (as Meltano
may keep none). Then, over both runs:

- no user is missing: the ids received by the killed run and the rerun hold every user;
- no window is exported twice, with the state or without it: each window's tag is created
  once. A rerun without state adopts the killed run's tasks, the delivered ones included;
- the bookmark and ``delivered_before`` never go back along the STATE messages (the killed
  run's up to its last STATE, then the rerun's, when the state is kept), and no STATE claims
  a user, by either of them, that was not received before it;
- the tasks left in the sandbox are exactly the ones the rerun delivered, each DONE: the
  killed run's were adopted, or deleted by the rerun's clean-up when its state named them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import (
    TapProcess,
    assert_left_are_delivered,
    delivered_tasks,
    records,
    wait_until,
)

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.tasks.tags import tag_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox
    from tap_spaaza_users.sandbox.recording import RecordedRequest

Messages = list[dict[str, Any]]

WINDOW = dt.timedelta(days=220)
WINDOWS = 5
#: How long a held ``POST /tasks`` answer keeps the tap waiting: time for the test to act.
HOLD_SECONDS = 1.0
#: What parks the tap before a request it must repeat (with ``retry_max_wait_seconds`` 30).
PARKED = {"status": 429, "retry_after": 30}
#: The scope of a fault on task creation.
CREATE = {"method": "POST", "path": "/tasks"}
#: Records read into a window before the kill (a window holds about 120).
SOME = 30


@dataclass
class Backfill:
    """The sandbox, the tap settings, and which users each window holds."""

    sandbox: Sandbox
    config: dict[str, Any]
    created: dict[int, dt.datetime]
    windows: list[set[int]]
    ends: list[str]

    def received_through(self, window: int) -> int:
        """How many records the windows up to ``window`` (counted from 0) hold together."""
        return sum(len(ids) for ids in self.windows[: window + 1])


@pytest.fixture
def backfill(sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any]) -> Backfill:
    """600 users over about three years, in five 220-day windows from the first user."""
    sandbox = sandbox_factory(users=600, seed=31)
    created = {
        int(user["id"]): parse_utc(user["created_date"].replace(" ", "T"))
        for user in sandbox.users()
    }
    start = min(created.values())
    now = dt.datetime.now(dt.timezone.utc)
    assert start + (WINDOWS - 1) * WINDOW <= now < start + WINDOWS * WINDOW  # 4 closed, 1 open
    windows: list[set[int]] = [set() for _ in range(WINDOWS)]
    for user_id, moment in created.items():
        windows[min((moment - start) // WINDOW, WINDOWS - 1)].add(user_id)
    config = sandbox.tap_config(
        **{
            **fast_settings,
            "delete_completed_tasks": True,
            "retry_max_wait_seconds": 30,
            "start_date": start.isoformat(),
            "backfill_window_days": WINDOW.days,
            "lookback_minutes": 0,
        }
    )
    ends = [(start + (n + 1) * WINDOW).isoformat() for n in range(WINDOWS - 1)]
    return Backfill(sandbox, config, created, windows, ends)


@pytest.fixture(params=["state-kept", "state-thrown-away"])
def rerun_state(request: pytest.FixtureRequest) -> str:
    """Whether the rerun gets the killed run's last STATE, or none (as Meltano may)."""
    return str(request.param)


# What the sandbox recorded, and what the test read


def calls(sandbox: Sandbox, method: str, path: str) -> list[RecordedRequest]:
    """The API requests of one method and path, oldest first."""
    return [
        r for r in sandbox.requests if r.server == "api" and (r.method, r.path) == (method, path)
    ]


def exports(sandbox: Sandbox) -> Counter[str | None]:
    """How many export tasks were created for each window tag."""
    return Counter(tag_of(r.json) for r in calls(sandbox, "POST", "/tasks") if r.status == 201)


def users_state(value: dict[str, Any] | None) -> dict[str, Any]:
    """The users stream's part of a STATE value."""
    assert value is not None
    return dict(value["bookmarks"]["users"])


def in_flight(task_id: int) -> Callable[[Messages], bool]:
    """Whether a STATE naming the task in flight was read."""

    def read(messages: Messages) -> bool:
        entries = [
            users_state(m["value"]).get("in_flight_task") for m in messages if m["type"] == "STATE"
        ]
        return any(entry and entry["id"] == task_id for entry in entries)

    return read


def delivered(*task_ids: int) -> Callable[[Messages], bool]:
    """Whether a STATE naming these tasks delivered was read."""

    def read(messages: Messages) -> bool:
        return any(
            set(task_ids) <= set(delivered_tasks(m["value"]))
            for m in messages
            if m["type"] == "STATE"
        )

    return read


def deletes(sandbox: Sandbox) -> list[RecordedRequest]:
    """The DELETE requests the sandbox received, oldest first."""
    return [r for r in sandbox.requests if r.server == "api" and r.method == "DELETE"]


def moment(value: object) -> dt.datetime | None:
    """A state date-time, or None."""
    return parse_utc(str(value)) if value is not None else None


# The rerun and its checks


def check_bookmarks(backfill: Backfill, messages: Messages) -> None:
    """Along the STATE messages, bookmarks never go back and claim only users received."""
    received: set[int] = set()
    bookmark = watermark = None
    for message in messages:
        if message["type"] == "RECORD":
            received.add(message["record"]["id"])
        if message["type"] != "STATE":
            continue
        users = users_state(message["value"])
        new_bookmark = moment(users.get("replication_key_value"))
        new_watermark = moment(users.get("delivered_before"))
        assert bookmark is None or (new_bookmark is not None and new_bookmark >= bookmark)
        assert watermark is None or (new_watermark is not None and new_watermark >= watermark)
        assert users.get("delivered_before") in {None, *backfill.ends}  # a window's end
        bookmark, watermark = new_bookmark, new_watermark
        claimed = {
            user_id
            for user_id, created in backfill.created.items()
            if (watermark and created < watermark) or (bookmark and created <= bookmark)
        }
        assert claimed <= received, f"a STATE claims {len(claimed - received)} users not sent"


def resume_and_check(
    backfill: Backfill,
    killed: TapProcess,
    start_tap: Callable[..., TapProcess],
    rerun_state: str,
    earlier: TapProcess | None = None,
) -> TapProcess:
    """Rerun (from the last STATE read, or none) and check users, exports, bookmarks, tasks.

    ``earlier`` is a whole run before the killed one, whose last STATE the killed run got.
    """
    keep = rerun_state == "state-kept"
    sandbox = backfill.sandbox
    assert sandbox.faults.armed() == []  # every fault fired in the killed run
    created_before = exports(sandbox)
    state = killed.last_state if keep else None
    rerun = start_tap(backfill.config, state)
    rerun.finish()

    received = earlier.ids if earlier else set()
    assert set(backfill.created) - (received | killed.ids | rerun.ids) == set()
    exported = exports(sandbox)
    assert None not in exported
    assert max(created_before.values()) == 1  # the killed run exported each window once
    assert max(exported.values()) == 1  # and the rerun exported none of them again
    before = earlier.messages if earlier else []
    if keep:
        watermark = moment(users_state(killed.last_state).get("delivered_before"))
        if watermark is not None:  # the rerun resumed after the windows delivered
            assert all(backfill.created[user_id] >= watermark for user_id in rerun.ids)
        last = max(i for i, m in enumerate(killed.messages) if m["type"] == "STATE")
        check_bookmarks(backfill, before + killed.messages[: last + 1] + rerun.messages)
    else:
        check_bookmarks(backfill, before + killed.messages)
        check_bookmarks(backfill, rerun.messages)
    assert rerun.last_state is not None
    assert_left_are_delivered(sandbox, rerun.last_state, state)
    return rerun


# The phases: window n's task is 1001 + n in the killed run (counting windows from 0)


def test_killed_once_the_first_task_is_created_and_before_the_next_one_is(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    sandbox.inject("answer_lost", then="answer", hold_seconds=HOLD_SECONDS, **CREATE)
    tap = start_tap(backfill.config)
    wait_until(lambda: 1001 in sandbox.tasks)  # created, its answer held: no next one yet
    sandbox.inject("status", **PARKED, **CREATE)
    tap.read_until(in_flight(1001))
    # The next window's task is refused with a 429: the tap waits 30 s to ask again.
    wait_until(lambda: any(r.status == PARKED["status"] for r in calls(sandbox, "POST", "/tasks")))
    tap.kill(keep_unread=True)
    assert set(sandbox.tasks) == {1001}
    assert tap.ids == set()

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_while_the_first_window_is_polled_and_the_next_one_exports(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    sandbox.inject("task_stuck", seconds=2)  # the first task to run: the first window's
    tap = start_tap(backfill.config)
    tap.read_until(in_flight(1001))
    wait_until(lambda: len(calls(sandbox, "GET", "/tasks/1001")) >= 2)
    tap.kill(keep_unread=True)
    assert sandbox.tasks[1001].code == "INPROGRESS"
    assert 1002 in sandbox.tasks
    assert tap.ids == set()

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_download_of_the_first_window_with_the_next_one_prepared(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    sandbox.inject("slow_download", bytes_per_second=10_000)  # about 4 s for the file
    tap = start_tap(backfill.config)
    wait_until(lambda: any(r.server == "storage" for r in sandbox.requests))
    tap.kill(keep_unread=True)
    (download,) = [r for r in sandbox.requests if r.server == "storage"]
    assert download.path.endswith("/User_Export-1001.csv")
    assert 1002 in sandbox.tasks
    assert tap.ids == set()  # a small file is read only once whole: it was not

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_emission_of_the_first_window(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) >= SOME)
    tap.kill()
    assert deletes(sandbox) == []
    assert set(sandbox.tasks) == {1001, 1002}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_after_the_first_windows_last_record_before_its_state(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    # After the window's STATE, the tap asks how the next window's task is doing: a 429.
    sandbox.inject("status", **PARKED, method="GET", path="/tasks/1002")
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) == backfill.received_through(0))
    wait_until(lambda: len(calls(sandbox, "GET", "/tasks/1002")) == 1)  # 429: it waits
    tap.kill()  # the window's STATE, written before that request, was never read
    assert tap.ids == backfill.windows[0]
    assert "delivered_before" not in users_state(tap.last_state)
    assert deletes(sandbox) == []
    assert set(sandbox.tasks) == {1001, 1002}
    assert sandbox.tasks[1001].code == "DONE"

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_after_the_first_windows_state_while_the_third_window_is_created(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    # The third window's task is created after the first window's records, which wait in
    # the pipe until read: the fault is armed in time for it.
    wait_until(lambda: len(exports(sandbox)) == 2)
    sandbox.inject("answer_lost", then="answer", hold_seconds=HOLD_SECONDS, **CREATE)
    tap.read_until(in_flight(1002))
    wait_until(lambda: 1003 in sandbox.tasks)
    tap.kill()
    unanswered = len(exports(sandbox)) == 2
    wait_until(lambda: len(exports(sandbox)) == 3)  # recorded once its answer went out
    assert unanswered  # the tap died waiting for it
    assert users_state(tap.last_state)["delivered_before"] == backfill.ends[0]
    assert delivered_tasks(tap.last_state) == [1001]
    assert deletes(sandbox) == []
    assert set(sandbox.tasks) == {1001, 1002, 1003}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_emission_of_the_second_window_with_the_third_one_prepared(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) >= backfill.received_through(0) + SOME)
    tap.kill()
    assert users_state(tap.last_state)["delivered_before"] == backfill.ends[0]
    assert delivered_tasks(tap.last_state) == [1001]
    assert deletes(sandbox) == []
    assert set(sandbox.tasks) == {1001, 1002, 1003}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_emission_of_the_last_window(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) >= backfill.received_through(3) + SOME)
    tap.kill()
    assert users_state(tap.last_state)["delivered_before"] == backfill.ends[3]
    assert delivered_tasks(tap.last_state) == [1001, 1002, 1003, 1004]
    assert deletes(sandbox) == []
    assert set(sandbox.tasks) == {1001, 1002, 1003, 1004, 1005}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_after_the_last_windows_state_with_every_task_kept(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(delivered(1005))
    tap.kill()  # nothing of the sync is left after its last STATE
    assert tap.ids == set(backfill.created)
    assert delivered_tasks(tap.last_state) == [1001, 1002, 1003, 1004, 1005]
    assert deletes(sandbox) == []
    assert assert_left_are_delivered(sandbox, tap.last_state) == {1001, 1002, 1003, 1004, 1005}

    resume_and_check(backfill, tap, start_tap, rerun_state)
    keep = rerun_state == "state-kept"
    assert {r.path for r in deletes(sandbox)} == (
        {f"/tasks/{task_id}" for task_id in range(1001, 1006)} if keep else set()
    )


def test_killed_while_the_next_sync_deletes_the_delivered_tasks(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    first = start_tap(backfill.config)
    first.finish()
    assert delivered_tasks(first.last_state) == [1001, 1002, 1003, 1004, 1005]
    sandbox.inject("status", **PARKED, method="DELETE")  # the clean-up's first DELETE
    tap = start_tap(backfill.config, first.last_state)
    tap.read_until(lambda messages: any(m["type"] == "STATE" for m in messages))
    wait_until(lambda: len(deletes(sandbox)) == 1)  # 429: it waits
    tap.kill()
    assert tap.last_state == first.last_state  # the state it started from, nothing more
    assert tap.ids == set()
    assert set(sandbox.tasks) == {1001, 1002, 1003, 1004, 1005}

    # With that state, the rerun deletes the five tasks and exports after the bookmark;
    # without (the state cleared), it adopts them all and exports nothing.
    resume_and_check(backfill, tap, start_tap, rerun_state, earlier=first)
    first_tasks = set(range(1001, 1006))
    if rerun_state == "state-kept":
        assert first_tasks.isdisjoint(sandbox.tasks)
    else:
        assert set(sandbox.tasks) == first_tasks  # adopted, delivered, kept for the next sync
