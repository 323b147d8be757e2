"""Polling is cheap: status calls grow like log T + T / poll_max, and DONE is seen within a poll."""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.tasks.polling import POLL_GROWTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox
    from tap_spaaza_users.sandbox.recording import RecordedRequest

STATUS_CALL = re.compile(r"^/tasks/\d+$")
INTERVAL = 0.05
MAX_INTERVAL = 0.4


def status_requests(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.requests if r.method == "GET" and STATUS_CALL.match(r.path or "")]


@pytest.mark.parametrize("task_seconds", [1.0, 3.0])
def test_status_calls_grow_like_log_t_plus_t_over_max_and_done_is_seen_within_a_poll(
    task_seconds: float,
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_factory(users=50, task_base_seconds=task_seconds)
    config = sandbox.tap_config(
        poll_interval_seconds=INTERVAL, poll_max_interval_seconds=MAX_INTERVAL
    )

    with caplog.at_level(logging.INFO):
        output = sync(config)

    assert output.error is None
    growing = math.ceil(math.log(MAX_INTERVAL / INTERVAL, POLL_GROWTH))
    checks = status_requests(sandbox)
    assert len(checks) <= growing + task_seconds / MAX_INTERVAL + 2
    assert len(checks) >= task_seconds / MAX_INTERVAL  # the cap is reached, not overshot
    (task,) = sandbox.tasks.values()
    assert task.done_at is not None  # set with the DONE code, under the sandbox's lock
    noticed = next(r.created for r in caplog.records if r.getMessage().endswith("is DONE"))
    assert noticed >= task.done_at
    # Seen within a poll: a status check arriving after the task became DONE is answered
    # DONE, and the tap polls no more after it. (One arriving just before may see DONE too.)
    assert len([r for r in checks if r.received_at >= task.done_at]) <= 1
