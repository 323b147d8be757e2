"""Kill a pipelined backfill at each phase; the rerun loses no user and exports no window twice.

The backfill has five windows (``backfill_window_days``) of about 120 users each, and the
default ``max_tasks_in_flight`` of 2: while one window's task is awaited, downloaded and
emitted, the next window's task already runs in Spaaza. The tap runs as a process whose
output the test reads as a target would (``tap_cli.TapProcess``), and each test kills it
with SIGKILL at one phase of that pipeline. Phases are made exact by what the sandbox has
recorded and what the test has read, never by sleeping: a window's RECORD messages (about
180 kB) are more than the pipe holds, so a tap whose output is not read waits mid-window; a
task the tap creates is in the sandbox before its answer (held by an ``answer_lost`` fault)
reaches the tap; a 429 with ``Retry-After`` parks the tap before a request it must repeat.

Each test runs twice: the rerun gets the killed run's last STATE read, or none (as Meltano
may keep none). Then, over both runs:

- no user is missing: the ids received by the killed run and the rerun hold every user;
- no window is exported twice: each window's tag is created at most once. Only without a
  state may a window be exported again, and only one whose task the killed run had already
  deleted once its file was delivered: nothing is left to adopt;
- the bookmark and ``delivered_before`` never go back along the STATE messages (the killed
  run's up to its last STATE, then the rerun's, when the state is kept), and no STATE claims
  a user, by either of them, that was not received before it;
- no task is left in the sandbox (``delete_completed_tasks`` is on).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from tap_cli import TapProcess, records, wait_until

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.journal import tag_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

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


@pytest.fixture
def start_tap(tmp_path: Path) -> Iterator[Callable[..., TapProcess]]:
    """Start tap processes that are all stopped after the test."""
    started: list[TapProcess] = []

    def start(config: dict[str, Any], state: dict[str, Any] | None = None) -> TapProcess:
        started.append(TapProcess(tmp_path, config, state))
        return started[-1]

    yield start
    for tap in started:
        if tap.process.poll() is None:
            tap.process.kill()
            tap.process.communicate(timeout=30)


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


def live_tags(sandbox: Sandbox) -> set[str | None]:
    """The window tags of the tasks in the sandbox now."""
    return {tag_of({"desc": task.desc}) for task in sandbox.tasks.values()}


def users_state(value: dict[str, Any] | None) -> dict[str, Any]:
    """The users stream's part of a STATE value."""
    assert value is not None
    return dict(value["bookmarks"]["users"])


def in_flight(task_id: int, *, delivered: bool = False) -> Callable[[Messages], bool]:
    """Whether a STATE naming the task in flight (its file delivered, or not yet) was read."""

    def read(messages: Messages) -> bool:
        entries = [
            users_state(m["value"]).get("in_flight_task") for m in messages if m["type"] == "STATE"
        ]
        return any(
            entry and entry["id"] == task_id and bool(entry.get("delivered")) == delivered
            for entry in entries
        )

    return read


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
    backfill: Backfill, killed: TapProcess, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    """Rerun (from the last STATE read, or none) and check users, exports, bookmarks, tasks."""
    keep = rerun_state == "state-kept"
    sandbox = backfill.sandbox
    assert sandbox.faults.armed() == []  # every fault fired in the killed run
    created_before, alive = exports(sandbox), live_tags(sandbox)
    rerun = start_tap(backfill.config, killed.last_state if keep else None)
    rerun.finish()

    assert set(backfill.created) - (killed.ids | rerun.ids) == set()
    exported = exports(sandbox)
    again = {tag for tag, count in exported.items() if count > 1}
    assert None not in exported
    assert max(created_before.values()) == 1  # the killed run exported each window once
    assert max(exported.values()) <= 2
    assert again <= (set() if keep else set(created_before) - alive)
    if keep:
        watermark = moment(users_state(killed.last_state).get("delivered_before"))
        if watermark is not None:  # the rerun resumed after the windows delivered
            assert all(backfill.created[user_id] >= watermark for user_id in rerun.ids)
        last = max(i for i, m in enumerate(killed.messages) if m["type"] == "STATE")
        check_bookmarks(backfill, killed.messages[: last + 1] + rerun.messages)
    else:
        check_bookmarks(backfill, killed.messages)
        check_bookmarks(backfill, rerun.messages)
    assert sandbox.tasks == {}


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
    assert calls(sandbox, "DELETE", "/tasks/1001") == []  # the window was never closed
    assert set(sandbox.tasks) == {1001, 1002}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_after_the_first_windows_last_record_before_its_state(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    sandbox.inject("status", **PARKED, method="DELETE", path="/tasks/1001")
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) == backfill.received_through(0))
    wait_until(lambda: len(calls(sandbox, "DELETE", "/tasks/1001")) == 1)  # 429: it waits
    tap.kill()  # the window's STATE, written before the clean-up, was never read
    assert tap.ids == backfill.windows[0]
    assert "delivered_before" not in users_state(tap.last_state)
    assert set(sandbox.tasks) == {1001, 1002}

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
    assert set(sandbox.tasks) == {1002, 1003}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_emission_of_the_second_window_with_the_third_one_prepared(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) >= backfill.received_through(0) + SOME)
    tap.kill()
    assert users_state(tap.last_state)["delivered_before"] == backfill.ends[0]
    assert calls(sandbox, "DELETE", "/tasks/1002") == []
    assert set(sandbox.tasks) == {1002, 1003}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_mid_emission_of_the_last_window(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    tap = start_tap(backfill.config)
    tap.read_until(lambda messages: records(messages) >= backfill.received_through(3) + SOME)
    tap.kill()
    assert users_state(tap.last_state)["delivered_before"] == backfill.ends[3]
    assert calls(sandbox, "DELETE", "/tasks/1005") == []
    assert set(sandbox.tasks) == {1005}

    resume_and_check(backfill, tap, start_tap, rerun_state)


def test_killed_while_deleting_the_last_windows_delivered_task(
    backfill: Backfill, start_tap: Callable[..., TapProcess], rerun_state: str
) -> None:
    sandbox = backfill.sandbox
    sandbox.inject("status", **PARKED, method="DELETE", path="/tasks/1005")
    tap = start_tap(backfill.config)
    tap.read_until(in_flight(1005, delivered=True))
    wait_until(lambda: len(calls(sandbox, "DELETE", "/tasks/1005")) == 1)  # 429: it waits
    tap.kill()
    assert tap.ids == set(backfill.created)
    assert set(sandbox.tasks) == {1005}

    resume_and_check(backfill, tap, start_tap, rerun_state)
