"""Segments against the sandbox: saved segments and rules, the window sent or applied by the tap."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

OUR_SIDE = "The bookmark is applied on our side"
HIGH_RFM = {"field_name": "overall", "field_type": "number", "operator": "is_between_number",
            "min": 4, "max": 5}  # fmt: skip
SUBSCRIBED = {"field_name": "mailing_list_subscribed", "field_type": "boolean", "operator": "is",
              "value": True}  # fmt: skip


def high_rfm(row: dict[str, str]) -> bool:
    """Saved segment 101 and HIGH_RFM, on the sandbox's CSV text."""
    return row["overall"] in {"4", "5"}


def subscribed(row: dict[str, str]) -> bool:
    """Saved segment 102 and SUBSCRIBED, on the sandbox's CSV text."""
    return row["mailing_list_subscribed"] == "true"


def task_bodies(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The bodies of every ``POST /tasks``, oldest first."""
    return [r.json for r in sandbox.requests if r.method == "POST" and r.path == "/tasks"]


def our_side_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log lines saying the bookmark is applied by the tap."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(OUR_SIDE)]


@pytest.fixture
def after_bookmark(
    small_sandbox: Sandbox, sync: Callable[..., Any]
) -> Callable[[dict[str, Any]], tuple[dict[str, Any], dt.datetime]]:
    """A first full sync's state, then new users past its bookmark, some in both segments.

    The first sync runs with the settings of the next (a state written for another segment
    is reset: see test_state_identity).

    Returns:
        A function of the settings returning the state and the window start of the next
        sync (lookback 0: the bookmark).
    """
    return lambda config: _after_bookmark(small_sandbox, config, sync)


def _after_bookmark(
    small_sandbox: Sandbox, config: dict[str, Any], sync: Callable[..., Any]
) -> tuple[dict[str, Any], dt.datetime]:
    """The first sync and the new users of :func:`after_bookmark`."""
    first = sync(config)
    assert first.error is None
    bookmark = parse_utc(first.bookmark)
    new = small_sandbox.add_users(8, created_date=bookmark + dt.timedelta(minutes=5))
    for user_id in new[:3]:
        small_sandbox.update_user(user_id, overall=5, mailing_list_subscribed=False)
    for user_id in new[3:6]:
        small_sandbox.update_user(user_id, overall=1, mailing_list_subscribed=True)
    for user_id in new[6:]:
        small_sandbox.update_user(user_id, overall=2, mailing_list_subscribed=False)
    small_sandbox.request_log.clear()
    return first.final_state, bookmark


def expected_ids(sandbox: Sandbox, since: dt.datetime | None, *tests: Any) -> set[int]:
    """Users created at or after ``since`` that pass any of ``tests``."""
    return {
        int(row["id"])
        for row in sandbox.users()
        if (since is None or parse_utc(row["created_date"]) >= since)
        and any(test(row) for test in tests)
    }


def test_saved_segment_is_exported_whole_and_the_bookmark_applied_by_the_tap(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    after_bookmark: Callable[[dict[str, Any]], tuple[dict[str, Any], dt.datetime]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**fast_config, "segment_id": 101, "lookback_minutes": 0}
    state, since = after_bookmark(config)
    caplog.set_level(logging.INFO)

    output = sync(config, state=state)

    assert output.error is None
    (body,) = task_bodies(small_sandbox)
    assert body["trigger"]["segment_id"] == 101
    assert "segment" not in body["trigger"]  # a task takes segment_id or segment, not both
    wanted = expected_ids(small_sandbox, since, high_rfm)
    assert len(wanted) >= 3  # the three new high-RFM users at least
    assert output.ids == wanted
    assert len(expected_ids(small_sandbox, None, high_rfm)) > len(wanted)  # older ones left out
    (line,) = our_side_lines(caplog)
    assert "saved segment 101 is exported whole" in line
    assert since.isoformat(sep=" ") in line


def test_saved_segment_on_a_first_sync_emits_the_whole_segment(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    output = sync({**fast_config, "segment_id": 102})

    assert output.error is None
    assert output.ids == expected_ids(small_sandbox, None, subscribed)
    assert 0 < len(output.ids) < small_sandbox.user_count()
    (line,) = our_side_lines(caplog)
    assert "no bookmark or start_date yet" in line


def test_rules_joined_by_all_get_the_window_server_side(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    after_bookmark: Callable[[dict[str, Any]], tuple[dict[str, Any], dt.datetime]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**fast_config, "segment_rules": [HIGH_RFM], "lookback_minutes": 0}
    state, since = after_bookmark(config)
    caplog.set_level(logging.INFO)

    output = sync(config, state=state)

    assert output.error is None
    (body,) = task_bodies(small_sandbox)
    segment = body["trigger"]["segment"]
    assert segment["join"] == "all"
    window_rule, rule = segment["rules"]
    assert window_rule["field_name"] == "created_date"
    assert parse_utc(window_rule["start_date"]) == since - dt.timedelta(seconds=1)
    assert rule == HIGH_RFM
    assert output.ids == expected_ids(small_sandbox, since, high_rfm)
    assert our_side_lines(caplog) == []


def test_rules_joined_by_any_are_sent_alone_and_the_bookmark_applied_by_the_tap(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    after_bookmark: Callable[[dict[str, Any]], tuple[dict[str, Any], dt.datetime]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**fast_config, "segment_rules": [HIGH_RFM, SUBSCRIBED], "segment_join": "any",
              "lookback_minutes": 0}  # fmt: skip
    state, since = after_bookmark(config)
    caplog.set_level(logging.INFO)

    output = sync(config, state=state)

    assert output.error is None
    (body,) = task_bodies(small_sandbox)
    assert body["trigger"]["segment"]["join"] == "any"
    # ORed with the rules, a created_date rule would let in every new user: it stays out.
    assert body["trigger"]["segment"]["rules"] == [HIGH_RFM, SUBSCRIBED]
    wanted = expected_ids(small_sandbox, since, high_rfm, subscribed)
    assert len(wanted) >= 6  # the six new users in one segment or the other
    assert output.ids == wanted
    (line,) = our_side_lines(caplog)
    assert "2 segment rules (join any) is exported whole" in line
    assert output.bookmark == max(r["created_date"] for r in output.records)


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


@pytest.mark.parametrize(
    "selection",
    [{"segment_id": 101}, {"segment_rules": [HIGH_RFM, SUBSCRIBED], "segment_join": "any"}],
    ids=["segment_id", "segment_join-any"],
)
def test_a_backfill_of_a_selection_spaaza_cannot_window_exports_it_once(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    selection: dict[str, Any],
) -> None:
    start = small_sandbox.clock.now() - dt.timedelta(days=400)
    config = {
        **fast_config,
        **selection,
        "start_date": start.isoformat(),
        "backfill_window_days": 30,
    }

    output = sync(config)

    assert output.error is None
    assert len(task_bodies(small_sandbox)) == 1  # was one whole-segment export per window
    tests = (high_rfm,) if "segment_id" in selection else (high_rfm, subscribed)
    assert output.ids == expected_ids(small_sandbox, start, *tests)
    assert output.bookmark == max(r["created_date"] for r in output.records)
