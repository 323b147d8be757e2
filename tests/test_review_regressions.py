"""Regressions found in review: cases that lost or duplicated users or corrupted the bookmark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
