"""Polling is cheap: status calls grow like log T + T / poll_max, and DONE is seen within a poll."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.tasks.polling import POLL_GROWTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

STATUS_CALL = re.compile(r"^/tasks/\d+$")
INTERVAL = 0.05
MAX_INTERVAL = 0.4


def watch_done(sandbox: Sandbox, seen: list[float]) -> threading.Thread:
    """Record the wall-clock moment the first task of ``sandbox`` reaches DONE."""

    def watch() -> None:
        while not sandbox.tasks:
            time.sleep(0.005)
        (task,) = sandbox.tasks.values()
        task.finished.wait(timeout=30)
        seen.append(time.time())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def status_calls(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "GET" and STATUS_CALL.match(r.path or ""))


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
    done_at: list[float] = []
    watcher = watch_done(sandbox, done_at)

    with caplog.at_level(logging.INFO):
        output = sync(config)
    watcher.join(timeout=5)

    assert output.error is None
    growing = math.ceil(math.log(MAX_INTERVAL / INTERVAL, POLL_GROWTH))
    calls = status_calls(sandbox)
    assert calls <= growing + task_seconds / MAX_INTERVAL + 2
    assert calls >= task_seconds / MAX_INTERVAL  # the cap is reached, not overshot
    noticed = next(r.created for r in caplog.records if r.getMessage().endswith("is DONE"))
    assert 0 <= noticed - done_at[0] <= MAX_INTERVAL + 0.1
