"""The export lifecycle: the task body, polling, task errors and timeouts."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.errors import (
    SpaazaBadRequestError,
    SpaazaTaskFailedError,
    SpaazaTaskTimeoutError,
)
from tap_spaaza_users.export import PollSettings, UsersExport, build_export_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 26, 12, 0, 0, 123456, tzinfo=UTC)


def test_task_body_follows_the_contract() -> None:
    body = build_export_task(
        chain_id=1234,
        window_start=dt.datetime(2026, 5, 1, 8, 30, tzinfo=UTC),
        now=NOW,
        origin="tap-spaaza-users 1.2.3",
    )

    assert body == {
        "chain": 1234,
        "desc": "tap-spaaza-users 1.2.3: users created since 2026-05-01T08:30:00Z",
        "target": {"action": "export", "export_index": "users", "export_format": "csv"},
        "trigger": {
            "once": "2026-05-26T12:00:00Z",
            "segment": {
                "entity": "people",
                "index": "users",
                "join": "all",
                "chain_id": 1234,
                "rules": [
                    {
                        "field_name": "created_date",
                        "field_type": "date",
                        "operator": "is_after_date",
                        # strict operator: one second early keeps users created at 08:30:00
                        "start_date": "2026-05-01T08:29:59Z",
                    }
                ],
            },
        },
    }


def test_task_body_without_window_exports_everyone_and_ands_extra_rules() -> None:
    everyone = build_export_task(chain_id=7, window_start=None, now=NOW, origin="tap")
    assert "segment" not in everyone["trigger"]
    assert everyone["desc"] == "tap: all users"

    opted_in = {"field_name": "mailing_list_subscribed", "field_type": "boolean",
                "operator": "is", "value": True}  # fmt: skip
    filtered = build_export_task(chain_id=7, window_start=None, rules=[opted_in], now=NOW,
                                 origin="tap")  # fmt: skip
    assert filtered["trigger"]["segment"]["rules"] == [opted_in]
    assert filtered["trigger"]["segment"]["join"] == "all"


def test_task_error_reports_the_task_id_and_spaazas_log_lines(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("task_error", logs=["Index users unavailable", "Export aborted"])

    output = sync(fast_config)

    assert isinstance(output.error, SpaazaTaskFailedError)
    message = str(output.error)
    (task_id,) = small_sandbox.tasks
    assert f"Export task {task_id} ended in ERROR" in message
    assert "Index users unavailable" in message
    assert "Export aborted" in message
    assert output.records == []


def test_stuck_task_times_out_is_deleted_and_keeps_the_bookmark(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    first = sync(fast_config)
    small_sandbox.inject("task_stuck", seconds=30)

    output = sync({**fast_config, "task_timeout_minutes": 0.01}, state=first.final_state)

    assert isinstance(output.error, SpaazaTaskTimeoutError)
    (delete,) = [r for r in small_sandbox.requests if r.method == "DELETE"]
    stuck_id = int(delete.path.rsplit("/", 1)[1])
    assert delete.status == 204
    assert stuck_id not in small_sandbox.tasks
    assert stuck_id > max(small_sandbox.tasks)  # the second sync's task, not the first
    assert f"Export task {stuck_id} did not finish within 0.01 minutes" in str(output.error)
    assert "task_timeout_minutes" in str(output.error)
    assert all(
        s["bookmarks"]["users"]["replication_key_value"] == first.bookmark for s in output.states
    )


def test_rule_rejected_by_spaaza_is_reported_with_its_name(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    rule = {"field_name": "shoe_size", "field_type": "number", "operator": "is", "value": 42}

    output = sync({**fast_config, "segment_rules": [rule]})

    assert isinstance(output.error, SpaazaBadRequestError)
    assert "HTTP 400" in str(output.error)
    assert "shoe_size" in str(output.error)
    assert small_sandbox.tasks == {}


class ScriptedTasks:
    """A stand-in for the client that answers task states from a script."""

    def __init__(self, codes: list[str | None]) -> None:
        """Answer these codes in turn, repeating the last."""
        self.codes = codes
        self.polls = 0

    def get_task(self, task_id: int, *, log_limit: int | None = None) -> dict[str, Any]:  # noqa: ARG002
        """Answer the next scripted state."""
        code = self.codes[min(self.polls, len(self.codes) - 1)]
        self.polls += 1
        return {"id": task_id, "state": {"code": code} if code else None}

    def delete_task(self, task_id: int) -> None:
        """Remember the deletion."""
        self.deleted = task_id


def test_polling_grows_its_interval_and_logs_each_state_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    tasks = ScriptedTasks(["READY", "READY", "INPROGRESS", "INPROGRESS", "DONE"])
    waits: list[float] = []
    export = UsersExport(
        tasks,  # type: ignore[arg-type]
        PollSettings(interval=1.0, max_interval=2.0, timeout=600),
        logging.getLogger("tests.export"),
        sleep=waits.append,
    )

    task = export.wait(42)

    assert task["state"]["code"] == "DONE"
    assert waits == [1.0, 1.5, 2.0, 2.0, 2.0]
    assert caplog.text.count("Export task 42 is READY") == 1
    assert caplog.text.count("Export task 42 is INPROGRESS") == 1
    assert caplog.text.count("Export task 42 is DONE") == 1


def test_unknown_state_is_not_finished_and_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = ScriptedTasks(["QUEUED", "QUEUED", None, "QUEUED", "DONE"])
    export = UsersExport(
        tasks,  # type: ignore[arg-type]
        PollSettings(interval=0.0, max_interval=0.0, timeout=600),
        logging.getLogger("tests.export"),
        sleep=lambda _: None,
    )

    export.wait(7)

    assert tasks.polls == 5
    assert caplog.text.count("unknown state 'QUEUED'") == 1
    assert caplog.text.count("unknown state None") == 1


def test_timeout_counts_on_the_clock_and_deletes_the_task() -> None:
    tasks = ScriptedTasks(["INPROGRESS"])
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    export = UsersExport(
        tasks,  # type: ignore[arg-type]
        PollSettings(interval=10.0, max_interval=60.0, timeout=120.0),
        logging.getLogger("tests.export"),
        sleep=sleep,
        monotonic=lambda: clock[0],
    )

    with pytest.raises(SpaazaTaskTimeoutError, match="within 2 minutes"):
        export.wait(9)

    assert clock[0] == pytest.approx(120.0)
    assert tasks.deleted == 9
