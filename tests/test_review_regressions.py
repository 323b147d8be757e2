"""Regressions found in review: cases that lost or duplicated users or corrupted the bookmark."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

HIGH_RFM = {"field_name": "overall", "field_type": "number", "operator": "is_between_number",
            "min": 4, "max": 5}  # fmt: skip


def test_rerun_with_changed_segment_does_not_reuse_the_task_of_the_old_segment(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    narrow = {**fast_config, "segment_rules": [HIGH_RFM]}
    small_sandbox.inject("status", status=400, path="/tasks/1001/download_url")
    first = sync(narrow)
    assert first.error is not None
    assert first.final_state["bookmarks"]["users"]["in_flight_task"]["id"] == 1001

    second = sync(fast_config, state=first.final_state)  # the segment setting removed

    assert second.error is None
    assert second.ids == {int(row["id"]) for row in small_sandbox.users()}


def test_user_with_a_future_created_date_does_not_push_the_bookmark_past_late_indexed_users(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox = sandbox_factory(users=30, seed=5)
    config = sandbox.tap_config(**fast_settings, lookback_minutes=60)
    now = sandbox.clock.now().replace(microsecond=0)
    sandbox.add_users(1, created_date=now + dt.timedelta(hours=3))  # skewed data, e.g. local time
    (late,) = sandbox.add_users(
        1, created_date=now - dt.timedelta(seconds=30), visible_after_seconds=600
    )

    first = sync(config)
    assert first.error is None
    assert late not in first.ids  # not indexed yet
    assert parse_utc(first.bookmark) <= dt.datetime.now(dt.timezone.utc)
    sandbox.clock.advance(900)
    second = sync(config, state=first.final_state)

    assert second.error is None
    assert late in second.ids


def test_state_with_a_bookmark_but_no_replication_key_still_syncs_incrementally(
    fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    first = sync(fast_config)
    state = first.final_state
    del state["bookmarks"]["users"]["replication_key"]  # e.g. a state written by hand

    second = sync(fast_config, state=state)

    assert second.error is None
    assert len(second.records) < len(first.records)
    assert second.final_state["bookmarks"]["users"]["replication_key"] == "created_date"
