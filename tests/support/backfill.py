"""A backfill to test against: users at and around each window seam, and its settings."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

DAY = dt.timedelta(days=1)


def backfill_sandbox(
    sandbox_factory: Callable[..., Sandbox],
) -> tuple[Sandbox, dt.datetime, list[int]]:
    """A sandbox with users at, and one second around, each backfill seam."""
    sandbox = sandbox_factory(users=200, seed=11)
    start = sandbox.clock.now().replace(microsecond=0) - 4 * DAY - dt.timedelta(hours=1)
    seam_users = []
    for seam in (start + DAY, start + 2 * DAY):
        for offset in (-1, 0, 1):
            seam_users += sandbox.add_users(2, created_date=seam + dt.timedelta(seconds=offset))
    sandbox.add_users(3, created_date=start)
    return sandbox, start, seam_users


def expected_ids(sandbox: Sandbox, start: dt.datetime) -> set[int]:
    """The sandbox users created at or after ``start``."""
    return {
        int(user["id"])
        for user in sandbox.users()
        if parse_utc(user["created_date"].replace(" ", "T")) >= start
    }


def backfill_config(
    sandbox: Sandbox, start: dt.datetime, fast_settings: dict[str, Any]
) -> dict[str, Any]:
    """Settings for a one-day-window backfill from ``start``."""
    return sandbox.tap_config(
        **fast_settings,
        start_date=start.isoformat(),
        backfill_window_days=1,
        lookback_minutes=0,
    )
