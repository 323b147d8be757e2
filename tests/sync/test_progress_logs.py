"""A sync says where it is: a heartbeat while polling, rows/s while emitting, request METRICs."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from support.tap_cli import FAST_SETTINGS, run_tap

from tap_spaaza_users.export import UsersExport
from tap_spaaza_users.streams import UsersStream

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from tap_spaaza_users.sandbox import Sandbox

HEARTBEAT = re.compile(
    r"^Export task (\d+) is still (READY|INPROGRESS) after (\d+)s \((\d+) polls\); "
    r"(\d+)s left before the 180-minute timeout$"
)
PROGRESS = re.compile(r"^Emitting task \d+: (\d+) users so far \((\d+) rows/s\)$")
METRIC = re.compile(r"METRIC: (\{.*\})$")


def info_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The INFO messages logged, formatted."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_a_slow_export_logs_a_heartbeat_with_state_elapsed_polls_and_time_left(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(users=50, task_base_seconds=2.0)
    monkeypatch.setattr(UsersExport, "heartbeat_seconds", 0.4)
    config = sandbox.tap_config(poll_interval_seconds=0.05, poll_max_interval_seconds=0.1)

    with caplog.at_level(logging.INFO):
        output = sync(config)

    assert output.error is None
    beats = [m for m in (HEARTBEAT.match(x) for x in info_messages(caplog)) if m]
    assert len(beats) >= 3, info_messages(caplog)
    polls = [int(m.group(4)) for m in beats]
    left = [int(m.group(5)) for m in beats]
    assert polls == sorted(polls), "the poll count only grows"
    assert polls[0] >= 2
    assert all(10_790 <= x <= 10_800 for x in left), "about 180 minutes minus a few seconds"
    created = [re.match(r"Created export task (\d+) ", x) for x in info_messages(caplog)]
    assert {m.group(1) for m in beats} == {m.group(1) for m in created if m}


def test_a_quick_export_logs_no_heartbeat_only_its_state_changes(
    small_sandbox: Sandbox, sync: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        output = sync(small_sandbox.tap_config())

    assert output.error is None
    assert not [x for x in info_messages(caplog) if HEARTBEAT.match(x)]
    assert [x for x in info_messages(caplog) if re.match(r"Export task \d+ is DONE$", x)]


def test_emitting_logs_rows_and_rate_now_and_then_and_a_summary(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(users=2500, seed=3)
    monkeypatch.setattr(UsersStream, "progress_seconds", 0.0)

    with caplog.at_level(logging.INFO):
        output = sync(sandbox.tap_config())

    assert output.error is None
    progress = [m for m in (PROGRESS.match(x) for x in info_messages(caplog)) if m]
    assert [int(m.group(1)) for m in progress] == [1000, 2000]
    assert all(int(m.group(2)) > 0 for m in progress)
    summary = [x for x in info_messages(caplog) if x.startswith("Emitted 2500 users from task")]
    assert len(summary) == 1
    assert re.search(r"in \d+\.\ds \(\d+ rows/s\)", summary[0])


def test_emitting_at_the_default_cadence_is_quiet_for_a_short_file(
    small_sandbox: Sandbox, sync: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        sync(small_sandbox.tap_config())

    assert not [x for x in info_messages(caplog) if PROGRESS.match(x)]


def metric_points(stderr: str) -> list[dict[str, Any]]:
    """The Singer METRIC points logged on stderr."""
    return [json.loads(m.group(1)) for m in map(METRIC.search, stderr.splitlines()) if m]


def test_every_api_call_is_an_http_request_duration_metric_like_sdk_rest_streams(
    small_sandbox: Sandbox, tmp_path: Path
) -> None:
    small_sandbox.inject("status", status=503, times=1, method="GET", path="/tasks/*")

    run = run_tap(tmp_path, small_sandbox.tap_config(**FAST_SETTINGS))

    assert run.returncode == 0, run.stderr[-2000:]
    points = [p for p in metric_points(run.stderr) if p["metric"] == "http_request_duration"]
    api_calls = [r for r in small_sandbox.requests if r.server == "api"]
    assert len(points) == len(api_calls)
    for point, call in zip(points, api_calls, strict=True):
        assert point["type"] == "timer"
        assert point["tags"]["method"] == call.method
        assert point["tags"]["http_status_code"] == call.status
        assert point["tags"]["endpoint"] == re.sub(r"/\d+(?=/|$)", "/{id}", call.path)
        assert point["tags"]["status"] == ("succeeded" if call.status < 400 else "failed")
        assert 0 <= point["value"] < 5
    endpoints = {p["tags"]["endpoint"] for p in points}
    assert endpoints == {"/tasks", "/tasks/{id}", "/tasks/{id}/download_url"}
    assert any(p["tags"]["http_status_code"] == 503 for p in points), "the retried 503 counts"
    assert small_sandbox.token_secret not in run.stderr


def test_a_connection_failure_is_a_failed_metric_without_status(tmp_path: Path) -> None:
    config = {
        "api_url": "http://127.0.0.1:9",  # discard: nothing listens
        "chain_id": 1234,
        "access_token_id": "00000000-0000-0000-0000-000000000000",
        "access_token_secret": "not-a-real-secret",
        **FAST_SETTINGS,
        "max_retries": 1,
    }

    run = run_tap(tmp_path, config)

    assert run.returncode == 1
    points = [p for p in metric_points(run.stderr) if p["metric"] == "http_request_duration"]
    assert [p["tags"]["endpoint"] for p in points] == ["/tasks", "/tasks"]
    assert all(p["tags"]["status"] == "failed" for p in points)
    assert all("http_status_code" not in p["tags"] for p in points)
