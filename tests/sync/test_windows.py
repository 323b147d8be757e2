"""Backfill windows: planning, seams that neither drop nor double a user, resuming mid-backfill."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from support.backfill import DAY, backfill_config, backfill_sandbox, expected_ids

from tap_spaaza_users.export import build_export_task
from tap_spaaza_users.windows import IdSet, Window, WindowSelection, plan_windows, sync_start

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def test_history_splits_into_closed_windows_and_one_open_window() -> None:
    windows = plan_windows(
        T0, now=T0 + 3 * DAY + dt.timedelta(hours=5), lookback=dt.timedelta(0), days=1
    )

    assert windows == [
        Window(T0, T0 + DAY),
        Window(T0 + DAY, T0 + 2 * DAY),
        Window(T0 + 2 * DAY, T0 + 3 * DAY),
        Window(T0 + 3 * DAY),
    ]


def test_a_window_closes_only_once_its_end_is_older_than_the_lookback() -> None:
    now = T0 + DAY + dt.timedelta(minutes=30)

    assert plan_windows(T0, now=now, lookback=dt.timedelta(minutes=60), days=1) == [Window(T0)]
    assert len(plan_windows(T0, now=now, lookback=dt.timedelta(minutes=20), days=1)) == 2


def test_without_the_setting_or_a_start_there_is_one_window() -> None:
    now = T0 + 900 * DAY
    assert plan_windows(T0, now=now, lookback=dt.timedelta(0), days=None) == [Window(T0)]
    assert plan_windows(None, now=now, lookback=dt.timedelta(0), days=30) == [Window(None)]


def test_windows_are_half_open_so_a_seam_user_belongs_to_the_later_window() -> None:
    early, late = Window(T0, T0 + DAY), Window(T0 + DAY)

    assert not early.contains(T0 + DAY)
    assert late.contains(T0 + DAY)
    assert early.contains(T0)
    assert early.contains(T0 + DAY - dt.timedelta(seconds=1))


def test_a_repeat_within_a_file_is_emitted_but_one_an_earlier_file_emitted_is_not() -> None:
    def row(user_id: int, modified: str) -> dict[str, Any]:
        return {"id": user_id, "created_date": "2024-01-01T12:00:00+00:00", "v": modified}

    seen = IdSet()
    first = WindowSelection(Window(T0, T0 + DAY), seen)
    emitted_first = list(first.select([row(1, "a"), row(2, "a"), row(1, "b")]))
    second = WindowSelection(Window(T0), seen)
    emitted_second = list(second.select([row(2, "c"), row(3, "a"), row(2, "d"), row(3, "b")]))

    assert [(r["id"], r["v"]) for r in emitted_first] == [(1, "a"), (2, "a"), (1, "b")]
    assert (first.emitted, first.repeated_in_file, first.repeated) == (3, 1, 0)
    assert [(r["id"], r["v"]) for r in emitted_second] == [(3, "a"), (3, "b")]
    assert (second.emitted, second.repeated_in_file, second.repeated) == (2, 1, 2)


def test_sync_start_never_goes_before_start_date_or_the_delivered_watermark() -> None:
    lookback = dt.timedelta(hours=1)
    bookmark = T0 + 10 * DAY

    assert sync_start(start_date=T0, bookmark=bookmark, lookback=lookback) == bookmark - lookback
    assert sync_start(start_date=bookmark, bookmark=bookmark, lookback=lookback) == bookmark
    watermark = bookmark + DAY
    assert (
        sync_start(start_date=T0, bookmark=bookmark, lookback=lookback, delivered_before=watermark)
        == watermark
    )
    assert sync_start(start_date=None, bookmark=None, lookback=lookback) is None


def test_closed_window_rule_asks_one_second_wider_on_each_side() -> None:
    body = build_export_task(
        chain_id=1, window_start=T0, window_end=T0 + DAY, now=T0 + 5 * DAY, origin="test"
    )

    (rule,) = body["trigger"]["segment"]["rules"]
    assert rule == {
        "field_name": "created_date",
        "field_type": "date",
        "operator": "is_between_date",
        "start_date": "2023-12-31T23:59:59Z",
        "end_date": "2024-01-02T00:00:01Z",
    }
    assert "before 2024-01-02T00:00:00Z" in body["desc"]


def test_backfill_exports_one_task_per_window_and_each_seam_user_once(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox, start, seam_users = backfill_sandbox(sandbox_factory)

    output = sync(backfill_config(sandbox, start, fast_settings))

    assert output.error is None
    assert output.ids == expected_ids(sandbox, start)
    assert set(seam_users) <= output.ids
    assert len(output.records) == len(output.ids)  # no user twice
    creations = [r for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]
    assert len(creations) == 5  # four closed days and the open window
    watermarks = [s["bookmarks"]["users"].get("delivered_before") for s in output.states]
    assert (start + 4 * DAY).isoformat() == watermarks[-1]
    assert (start + DAY).isoformat() in watermarks  # STATE after the first window already


def test_interrupted_backfill_resumes_in_the_window_it_stopped_and_reuses_its_task(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)
    config = backfill_config(sandbox, start, fast_settings)
    sandbox.inject("status", status=400, path="/tasks/1003/download_url")

    first = sync(config)

    assert first.error is not None
    assert min(sandbox.tasks) == 1001  # the fault hit the third window's task
    users_state = first.final_state["bookmarks"]["users"]
    assert users_state["delivered_before"] == (start + 2 * DAY).isoformat()
    assert users_state["in_flight_task"]["id"] == 1003
    second = sync(config, state=first.final_state)

    assert second.error is None
    creations = [r for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]
    assert len(creations) == 5  # three before the failure, two after: window 3 was reused
    assert first.ids | second.ids == expected_ids(sandbox, start)
    assert not first.ids & second.ids  # the resumed backfill re-read no delivered day
