"""Task hygiene at scale: the next sync deletes every delivered task of the selection."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox


def test_the_sync_after_a_long_daily_backfill_deletes_every_task_of_it(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., SyncOutput]
) -> None:
    # 731 one-day windows: more tasks than the state ever named (400) or a listing read (500).
    start = small_sandbox.clock.now() - dt.timedelta(days=731)
    config = {
        **fast_config,
        "start_date": start.isoformat(),
        "backfill_window_days": 1,
        "max_tasks_in_flight": 4,
        "delete_completed_tasks": True,
    }
    started = time.monotonic()
    backfill = sync(config)
    seconds = time.monotonic() - started
    assert backfill.error is None, backfill.error
    backfill_tasks = set(small_sandbox.tasks)
    assert len(backfill_tasks) >= 731
    assert len(str(backfill.final_state)) < 2_000, "no list of ids grows in the state"

    after = sync(config, state=backfill.final_state)

    assert after.error is None
    left = {i for i, task in small_sandbox.tasks.items() if task.code == "DONE"}
    assert left.isdisjoint(backfill_tasks), f"{len(left & backfill_tasks)} left ({seconds:.0f}s)"
    assert len(left) == 1  # the next sync's own task, kept until the sync after it
