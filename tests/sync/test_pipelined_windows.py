"""Pipelined backfill: the next windows are exported while the current one loads, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.backfill import DAY, backfill_config, backfill_sandbox, expected_ids

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox
    from tap_spaaza_users.sandbox.recording import RecordedRequest


def _is_create(request: RecordedRequest) -> bool:
    return request.server == "api" and request.method == "POST" and request.path == "/tasks"


def _is_file(request: RecordedRequest) -> bool:
    return request.server == "storage" and request.method == "GET"


def most_tasks_awaiting_download(requests: list[RecordedRequest]) -> int:
    """The most export tasks created and not yet downloaded at any point of the request log."""
    created = downloaded = most = 0
    for request in requests:
        if _is_create(request):
            created += 1
            most = max(most, created - downloaded)
        elif _is_file(request) and request.status in (200, 206):
            downloaded += 1
    return most


def test_the_next_window_is_exported_while_the_current_one_is_downloaded(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)

    output = sync(backfill_config(sandbox, start, fast_settings))

    assert output.error is None
    assert output.ids == expected_ids(sandbox, start)
    log = sandbox.requests
    first_download = next(i for i, r in enumerate(log) if _is_file(r))
    creations_before = [r for r in log[:first_download] if _is_create(r)]
    assert len(creations_before) == 2  # the first window's task and the next one's
    assert most_tasks_awaiting_download(log) == 2  # the default max_tasks_in_flight
    assert len([r for r in log if _is_create(r)]) == 5  # still one task per window


@pytest.mark.parametrize("in_flight", [1, 3])
def test_no_more_tasks_run_at_once_than_max_tasks_in_flight(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    sync: Callable[..., Any],
    in_flight: int,
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)
    config = backfill_config(sandbox, start, fast_settings) | {"max_tasks_in_flight": in_flight}

    output = sync(config)

    assert output.error is None
    assert output.ids == expected_ids(sandbox, start)
    assert most_tasks_awaiting_download(sandbox.requests) == in_flight


def test_bookmark_advances_window_by_window_in_order_while_tasks_run_ahead(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)

    output = sync(backfill_config(sandbox, start, fast_settings))

    assert output.error is None
    watermarks = [
        value
        for s in output.states
        if (value := s["bookmarks"]["users"].get("delivered_before")) is not None
    ]
    assert watermarks == sorted(watermarks)
    assert {(start + n * DAY).isoformat() for n in (1, 2, 3, 4)} <= set(watermarks)


@pytest.mark.parametrize("keep_state", [True, False], ids=["state kept", "state thrown away"])
def test_an_interrupted_pipelined_backfill_reuses_the_tasks_it_prepared_ahead(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    sync: Callable[..., Any],
    keep_state: bool,  # noqa: FBT001 - a test parameter
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)
    config = backfill_config(sandbox, start, fast_settings)
    sandbox.inject("status", status=400, path="/tasks/1002/download_url")

    first = sync(config)

    assert first.error is not None
    created = {r.json["desc"] for r in sandbox.requests if _is_create(r)}
    assert len(created) == 3  # windows 1 and 2, and window 3 prepared ahead
    second = sync(config, state=first.final_state if keep_state else None)

    assert second.error is None
    assert first.ids | second.ids == expected_ids(sandbox, start)
    descs = [r.json["desc"] for r in sandbox.requests if _is_create(r)]
    assert len(descs) == len(set(descs)) == 5  # no window exported twice across both runs


def test_a_rerun_resuming_a_done_task_still_prepares_the_next_window_ahead(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], sync: Callable[..., Any]
) -> None:
    sandbox, start, _ = backfill_sandbox(sandbox_factory)
    config = backfill_config(sandbox, start, fast_settings)
    sandbox.inject("status", status=400, path="/tasks/1001/download_url")
    first = sync(config | {"max_tasks_in_flight": 1})
    assert first.error is not None
    assert len([r for r in sandbox.requests if _is_create(r)]) == 1  # window 1's task, DONE
    seen = len(sandbox.requests)

    second = sync(config, state=first.final_state)

    assert second.error is None
    assert first.ids | second.ids == expected_ids(sandbox, start)
    rerun = sandbox.requests[seen:]
    first_download = next(i for i, r in enumerate(rerun) if _is_file(r))
    assert len([r for r in rerun[:first_download] if _is_create(r)]) == 1  # window 2, ahead
    assert len([r for r in rerun if _is_create(r)]) == 4  # windows 2 to 5, once each
