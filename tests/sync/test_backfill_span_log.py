"""The backfill log line names the whole span, not only the first window."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import utc_text

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest
    from support.tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox


def test_backfill_log_line_names_the_whole_span_and_the_first_window(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    start = small_sandbox.clock.now() - dt.timedelta(days=3)
    config = {**fast_config, "start_date": start.isoformat(), "backfill_window_days": 1}

    with caplog.at_level(logging.INFO):
        output = sync(config)

    assert output.error is None
    messages = [r.getMessage() for r in caplog.records]
    (line,) = [m for m in messages if m.startswith("Backfill in")]
    windows = len([m for m in messages if m.startswith("Window ") and " delivered; " in m])
    first_end = utc_text(start + dt.timedelta(days=1))
    assert windows > 1
    assert line == (
        f"Backfill in {windows} windows, from {utc_text(start)} to now "
        f"(the first window: {utc_text(start)} to {first_end})"
    )
