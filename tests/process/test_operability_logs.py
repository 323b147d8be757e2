"""The user's log: status polls' METRICs at metrics_log_level, JSON fields, export estimates."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import FAST_SETTINGS, run_tap

from tap_spaaza_users.export import UsersExport
from tap_spaaza_users.logs import export_times

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

METRIC = re.compile(r"METRIC: (\{.*\})$")
#: A logging configuration as Meltano writes it for a tap with ``structured-logging``.
STRUCTURED_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "singer_sdk.logging.StructuredFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"}
    },
    "root": {"level": "INFO", "handlers": ["console"]},
}  # fmt: skip


def metric_points(stderr: str) -> list[dict[str, Any]]:
    """The Singer METRIC points logged on stderr (console format)."""
    return [json.loads(m.group(1)) for m in map(METRIC.search, stderr.splitlines()) if m]


def is_status_poll(point: dict[str, Any]) -> bool:
    """Whether a METRIC point is a successful ``GET /tasks/{id}``."""
    tags = point["tags"]
    return bool(
        point["metric"] == "http_request_duration"
        and tags.get("endpoint") == "/tasks/{id}"
        and tags.get("method") == "GET"
        and tags.get("status") == "succeeded"
    )


@pytest.fixture
def slow_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """Exports that take about a second: a sync polls a dozen times or more."""
    return sandbox_factory(users=80, seed=5, task_base_seconds=1.0)


def polling_config(sandbox: Sandbox, **settings: Any) -> dict[str, Any]:
    """Settings that poll every 50 ms."""
    fast = {**FAST_SETTINGS, "poll_interval_seconds": 0.05, "poll_max_interval_seconds": 0.05}
    return sandbox.tap_config(**fast, **settings)


def status_polls(sandbox: Sandbox) -> int:
    """How many ``GET /tasks/{id}`` the sandbox answered with success."""
    return sum(
        1
        for r in sandbox.requests
        if r.server == "api"
        and r.method == "GET"
        and re.fullmatch(r"/tasks/\d+", r.path)
        and r.status < 400
    )


def test_by_default_every_status_poll_is_a_metric_line(
    slow_sandbox: Sandbox, tmp_path: Path
) -> None:
    run = run_tap(tmp_path, polling_config(slow_sandbox))

    assert run.returncode == 0, run.stderr[-2000:]
    polls = [p for p in metric_points(run.stderr) if is_status_poll(p)]
    assert len(polls) == status_polls(slow_sandbox) >= 5


@pytest.mark.parametrize("level", ["NONE", "DEBUG"])
def test_metrics_log_level_silences_status_polls_and_keeps_the_metrics_that_matter(
    slow_sandbox: Sandbox, tmp_path: Path, level: str
) -> None:
    slow_sandbox.inject("status", status=503, times=1, method="GET", path="/tasks/*")

    run = run_tap(tmp_path, polling_config(slow_sandbox, metrics_log_level=level))

    assert run.returncode == 0, run.stderr[-2000:]
    assert status_polls(slow_sandbox) >= 5
    points = metric_points(run.stderr)
    assert not [p for p in points if is_status_poll(p)]
    names = {p["metric"] for p in points}
    assert {"record_count", "sync_duration", "http_request_duration"} <= names
    endpoints = {
        (p["tags"]["method"], p["tags"]["endpoint"])
        for p in points
        if p["metric"] == "http_request_duration"
    }
    assert ("POST", "/tasks") in endpoints
    assert ("GET", "/tasks/{id}/download_url") in endpoints
    failed = [p for p in points if p["tags"].get("http_status_code") == 503]
    assert failed, "a failed status poll is still a METRIC line"
    (count,) = [p for p in points if p["metric"] == "record_count"]
    assert count["value"] == 80


def test_metrics_log_level_debug_shows_status_polls_when_the_tap_logs_at_debug(
    slow_sandbox: Sandbox, tmp_path: Path
) -> None:
    run = run_tap(
        tmp_path,
        polling_config(slow_sandbox, metrics_log_level="DEBUG"),
        env={"LOGLEVEL": "debug"},
    )

    assert run.returncode == 0, run.stderr[-2000:]
    lines = [x for x in run.stderr.splitlines() if METRIC.search(x)]
    polls = [x for x in lines if is_status_poll(json.loads(METRIC.search(x).group(1)))]  # type: ignore[union-attr]
    assert len(polls) == status_polls(slow_sandbox)
    assert all(re.search(r"\|\s*DEBUG\s*\|", x) for x in polls)
    assert all(re.search(r"\|\s*INFO\s*\|", x) for x in lines if x not in polls)


def test_a_metrics_log_level_not_offered_is_one_clear_error(
    tmp_path: Path, small_sandbox: Sandbox
) -> None:
    run = run_tap(tmp_path, small_sandbox.tap_config(metrics_log_level="LOUD"))

    assert run.returncode == 1
    assert "metrics_log_level" in run.stderr
    assert "Traceback" not in run.stderr


def structured_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines of the SDK's structured format."""
    return [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]


def test_json_logs_carry_task_window_bytes_rows_and_rate_as_fields(
    slow_sandbox: Sandbox, tmp_path: Path
) -> None:
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(STRUCTURED_LOGGING), encoding="utf-8")
    config = polling_config(slow_sandbox, start_date="2000-01-01T00:00:00Z")

    run = run_tap(tmp_path, config, env={"SINGER_SDK_LOG_CONFIG": str(log_config)})

    assert run.returncode == 0, run.stderr[-2000:]
    lines = structured_lines(run.stderr)
    assert lines, run.stderr[-2000:]

    def one(pattern: str) -> dict[str, Any]:
        (found,) = [x["extra"] for x in lines if re.match(pattern, x["message"])]
        return dict(found)

    (task_id,) = {t.id for t in slow_sandbox.tasks.values()}
    assert one(r"Created export task")["task_id"] == task_id
    done = one(r"Export task \d+ is DONE$")
    assert done["task_id"] == task_id
    assert done["state"] == "DONE"
    assert done["polls"] >= 5
    assert 0.9 <= done["seconds"] < 30
    downloaded = one(r"Downloaded export file")
    (download,) = [r for r in slow_sandbox.requests if r.server == "storage"]
    assert downloaded["task_id"] == task_id
    assert downloaded["bytes"] > 0
    assert downloaded["megabytes_per_second"] > 0
    assert download.status == 200
    emitted = one(r"Emitted \d+ users")
    assert emitted["task_id"] == task_id
    assert emitted["rows"] == len(run.records) == 80
    assert emitted["rows_per_second"] > 0
    assert emitted["window_start"] == "2000-01-01T00:00:00+00:00"
    assert emitted["window_end"] is None
    delivered = one(r"Window .* delivered")
    assert delivered["task_id"] == task_id
    assert delivered["bookmark"] == max(r["created_date"] for r in run.records)
    assert slow_sandbox.token_secret not in run.stderr


def test_a_long_export_says_how_long_the_chains_last_exports_took(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(users=50, seed=4, task_base_seconds=2.2)
    config = polling_config(sandbox, start_date="2000-01-01T00:00:00Z")
    first = sync(config)
    assert first.error is None
    (took,) = first.final_state["bookmarks"]["users"]["export_seconds"]["window"]
    # Whole seconds: an SDK target reads a float in a STATE as a Decimal it cannot write back.
    assert type(took) is int
    assert 2 <= took < 10
    sandbox.add_users(3)
    monkeypatch.setattr(UsersExport, "heartbeat_seconds", 0.3)

    with caplog.at_level(logging.INFO):
        second = sync(config, state=first.final_state)

    assert second.error is None
    beats = [r for r in caplog.records if r.getMessage().startswith("Export task")]
    hinted = [r for r in beats if "usually" in r.getMessage()]
    assert hinted, [r.getMessage() for r in beats]
    assert f"usually ~{took:.0f} s by the last export of this chain; " in hinted[0].getMessage()
    assert hinted[0].usual_seconds == took  # type: ignore[attr-defined]
    kept = second.final_state["bookmarks"]["users"]["export_seconds"]["window"]
    assert len(kept) == 2
    assert float(kept[0]) == took


def test_a_first_export_has_no_estimate_and_a_whole_export_is_timed_apart(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(users=50, seed=4, task_base_seconds=1.0)
    monkeypatch.setattr(UsersExport, "heartbeat_seconds", 0.3)

    with caplog.at_level(logging.INFO):
        output = sync(polling_config(sandbox))

    assert output.error is None
    beats = [r.getMessage() for r in caplog.records if "is still" in r.getMessage()]
    assert beats
    assert not [x for x in beats if "usually" in x]
    timed = output.final_state["bookmarks"]["users"]["export_seconds"]
    assert set(timed) == {"whole"}, "no window rule: the whole chain was exported"


def test_export_times_keep_the_last_five_per_kind_and_drop_what_they_cannot_read() -> None:
    stream_state: dict[str, Any] = {
        "export_seconds": {"window": [1, "x"], "whole": [3.0], "odd": [1]}
    }
    durations = export_times.history(stream_state)
    assert durations == {"whole": [3.0]}
    assert stream_state["export_seconds"] is durations
    for seconds in (10.2, 20.0, 30.0, 40.0, 50.0, 59.6):
        export_times.note(durations, "window", seconds)
    assert durations["window"] == [20, 30, 40, 50, 60]
    assert all(type(value) is int for value in durations["window"])
    assert export_times.usual(durations, "window") == (40.0, 5)
    assert export_times.usual(durations, "whole") == (3.0, 1)
    assert export_times.history({"export_seconds": [1, 2]}) == {}
    window_body = {"trigger": {"segment": {"rules": [{"field_name": "created_date"}]}}}
    assert export_times.kind_of(window_body) == "window"
    assert export_times.kind_of({"trigger": {"segment_id": 7}}) == "whole"
    assert export_times.kind_of({"trigger": {"once": "2026-01-01T00:00:00Z"}}) == "whole"


def test_a_state_whose_export_times_cannot_be_read_still_syncs_and_times_afresh(
    small_sandbox: Sandbox, sync: Callable[..., Any]
) -> None:
    state = {"bookmarks": {"users": {"export_seconds": {"window": "soon", "whole": [-1]}}}}

    output = sync(small_sandbox.tap_config(), state=state)

    assert output.error is None
    assert len(output.records) == 120
    kept = output.final_state["bookmarks"]["users"]["export_seconds"]
    assert set(kept) <= {"whole"}, "the unreadable values are dropped, never an error"


def test_a_deleted_task_is_named_in_a_json_field(small_sandbox: Sandbox, tmp_path: Path) -> None:
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(STRUCTURED_LOGGING), encoding="utf-8")
    config = small_sandbox.tap_config(**{**FAST_SETTINGS, "delete_completed_tasks": True})
    env = {"SINGER_SDK_LOG_CONFIG": str(log_config)}
    first = run_tap(tmp_path, config, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    (delivered,) = small_sandbox.tasks

    second = run_tap(tmp_path, config, state=first.states[-1], env=env)

    assert second.returncode == 0, second.stderr[-2000:]
    deleted = [x for x in structured_lines(second.stderr) if x["message"].startswith("Deleted")]
    assert [x["extra"]["task_id"] for x in deleted] == [delivered]
