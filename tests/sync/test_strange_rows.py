"""Strange rows never cost a user.

Skipped rows are exactly the bad ones, and the bookmark stays before them; rows Spaaza returned
are never dropped by the tap's own window arithmetic.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import FAST_SETTINGS, run_tap

from tap_spaaza_users.contract import parse_utc, utc_text
from tap_spaaza_users.windows import IdSet, Window, WindowSelection

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def created(moment: dt.datetime) -> dict[str, Any]:
    return {"created_date": utc_text(moment)}


# Window arithmetic ---------------------------------------------------------------------------


def test_rows_beyond_spaazas_filter_are_emitted_and_the_bookmark_stays_in_the_window() -> None:
    window = Window(T0, T0 + DAY)
    rows = [
        {"id": 1, **created(T0 + DAY + dt.timedelta(hours=1, minutes=59))},  # local time, +2 h
        {"id": 2, **created(T0 + DAY)},  # within the filter's margin: the next window's
        {"id": 3, **created(T0 - SECOND)},  # within the margin: delivered before
        {"id": 4, **created(T0 + dt.timedelta(hours=5))},
        {"id": 5, **created(T0 - dt.timedelta(minutes=30))},
    ]
    selection = WindowSelection(window, IdSet(), server_margin=SECOND)

    assert [row["id"] for row in selection.select(rows)] == [1, 4, 5]
    assert (selection.kept_outside, selection.outside, selection.emitted) == (2, 2, 3)
    assert selection.suggested_offset() == "UTC+02:00"
    assert selection.latest == utc_text(T0 + DAY)  # the window's end, not the row beyond it


def test_a_selection_the_tap_filters_itself_leaves_out_every_row_outside_the_window() -> None:
    window = Window(T0, T0 + DAY)
    rows = [
        {"id": 1, **created(T0 + DAY + dt.timedelta(hours=1))},
        {"id": 2, **created(T0 - dt.timedelta(hours=1))},
        {"id": 3, **created(T0 + dt.timedelta(hours=1))},
    ]
    selection = WindowSelection(window, IdSet())

    assert [row["id"] for row in selection.select(rows)] == [3]
    assert (selection.kept_outside, selection.outside) == (0, 2)


@pytest.mark.parametrize("hours", [2, -3])
def test_local_time_created_dates_lose_no_user_at_the_window_seams(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    hours: int,
) -> None:
    sandbox = sandbox_factory(users=200, seed=11)
    start = sandbox.clock.now().replace(microsecond=0) - 4 * DAY - dt.timedelta(hours=6)
    seams = [start + day * DAY for day in range(1, 5)]
    # Just inside each seam, on the side that local time pushes across it.
    towards = dt.timedelta(minutes=-10 if hours > 0 else 10)
    seam_users = [
        user for seam in seams for user in sandbox.add_users(3, created_date=seam + towards)
    ]
    sandbox.inject("local_time", hours=hours, times=10)
    config = sandbox.tap_config(
        **FAST_SETTINGS, start_date=start.isoformat(), backfill_window_days=1, lookback_minutes=0
    )

    with caplog.at_level(logging.WARNING):
        output = sync(config)

    assert output.error is None
    expected = {
        int(user["id"])
        for user in sandbox.users()
        if parse_utc(user["created_date"].replace(" ", "T")) >= start
    }
    assert set(seam_users) <= output.ids
    assert output.ids == expected
    assert len(output.records) == len(output.ids)
    warnings = [r.getMessage() for r in caplog.records if "Spaaza filtered on" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"local time (about UTC{'+' if hours > 0 else '-'}{abs(hours):02d}:00)" in warnings[0]
    assert warnings[0].startswith("Export task")
    for state in output.states:  # each closed window's bookmark stays at its end
        users_state = state["bookmarks"]["users"]
        watermark = users_state.get("delivered_before")
        bookmark = users_state.get("replication_key_value")
        if watermark and bookmark:
            assert parse_utc(bookmark) <= parse_utc(watermark)


# Invalid rows --------------------------------------------------------------------------------


def missing_users(sandbox: Sandbox, ids: set[int]) -> list[dict[str, str]]:
    return [user for user in sandbox.users() if int(user["id"]) not in ids]


@pytest.mark.parametrize("fault", ["stray_quote", "invalid_utf8"])
def test_a_bad_line_costs_its_user_only_and_the_next_sync_exports_that_user_again(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, fault: str
) -> None:
    sandbox = sandbox_factory(users=200, seed=5)
    sandbox.inject(fault, rows=[50])
    config = sandbox.tap_config(**FAST_SETTINGS, on_invalid_row="skip")

    run = run_tap(tmp_path, config)

    assert run.returncode == 0, run.stderr
    ids = {int(record["id"]) for record in run.records}
    (lost,) = missing_users(sandbox, ids)
    assert len(ids) == 199
    (skipped,) = run.lines_with("row skipped")
    (summary,) = run.lines_with("invalid rows skipped")
    assert "1 invalid rows skipped" in summary
    line = int(skipped.split(", line ")[1].split(":")[0])
    (held,) = run.lines_with("left out as invalid")
    assert f"(lines {line})" in held
    assert "WARNING" in held
    bookmark = run.states[-1]["bookmarks"]["users"]["replication_key_value"]
    assert parse_utc(bookmark) <= parse_utc(lost["created_date"].replace(" ", "T"))

    again = run_tap(tmp_path, config, state=run.states[-1])  # the fault is spent

    assert again.returncode == 0, again.stderr
    assert int(lost["id"]) in {int(record["id"]) for record in again.records}
