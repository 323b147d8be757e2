"""Every fault of the export path, through the tap's command line against the sandbox."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import pytest
from support.flaky_proxy import FlakyProxy
from support.ports import refusing_port
from support.tap_cli import CliRun, run_tap

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

FIRST_TASK = "/tasks/1001"


def assert_every_user_once(run: CliRun, sandbox: Sandbox) -> None:
    """The run succeeded and emitted each sandbox user exactly once."""
    assert run.returncode == 0, run.stderr
    ids = [r["id"] for r in run.records]
    assert len(ids) == len(set(ids)), "a record was emitted twice"
    assert set(ids) == {int(u["id"]) for u in sandbox.users()}


def assert_failed_keeping_bookmark(run: CliRun, state: dict[str, Any]) -> None:
    """The run failed and every STATE it wrote kept the incoming bookmark."""
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.records == []
    assert run.states, "the SDK writes the incoming state first"
    kept = state["bookmarks"]["users"]["replication_key_value"]
    for written in run.states:
        assert written["bookmarks"]["users"]["replication_key_value"] == kept


def statuses(sandbox: Sandbox, server: str, path_end: str) -> list[int]:
    """The statuses of the recorded requests to ``server`` whose path ends with ``path_end``."""
    return [r.status for r in sandbox.requests if r.server == server and r.path.endswith(path_end)]


def first_sync_state(sandbox: Sandbox, tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Run a clean sync and return the state it leaves; forget its requests."""
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr
    sandbox.add_users(3)
    sandbox.request_log.clear()
    return cast("dict[str, Any]", run.states[-1])


# API faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"), [(FIRST_TASK, 503), (FIRST_TASK + "/download_url", 502)]
)
def test_api_5xx_while_polling_and_on_download_url_is_retried(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, path: str, status: int
) -> None:
    small_sandbox.inject("status", status=status, times=2, method="GET", path=path)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert statuses(small_sandbox, "api", path)[:3] == [status, status, 200]
    assert len(small_sandbox.tasks) == 1


def test_api_5xx_past_the_last_try_is_a_clear_error_and_keeps_the_bookmark(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    state = first_sync_state(small_sandbox, tmp_path, fast_config)
    small_sandbox.inject("status", status=503, times=50, path="/tasks/*/download_url")

    run = run_tap(tmp_path, fast_config, state=state)

    assert_failed_keeping_bookmark(run, state)
    error = run.error
    assert re.search(r"GET /tasks/\d+/download_url failed after 4 tries", error)
    assert "HTTP 503" in error
    assert "max_retries" in error
    assert statuses(small_sandbox, "api", "/download_url") == [503] * 4


def test_api_429_waits_as_told_and_logs_once(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject(
        "status", status=429, retry_after=0, times=2, method="GET", path=FIRST_TASK
    )

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert statuses(small_sandbox, "api", FIRST_TASK)[:3] == [429, 429, 200]
    assert len(run.lines_with("Rate limited")) == 1


@pytest.mark.parametrize("fault", ["reset", "stall"])
def test_api_connection_reset_or_read_timeout_is_retried(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, fault: str
) -> None:
    with FlakyProxy(small_sandbox.url, [fault, fault]) as proxy:
        settings = {**fast_config, "api_url": proxy.url, "request_timeout_seconds": 0.5}
        run = run_tap(tmp_path, settings)

    assert_every_user_once(run, small_sandbox)
    assert proxy.seen[:2] == [fault, fault]
    assert len(small_sandbox.tasks) == 1  # the retried POST never reached the API twice


@pytest.mark.parametrize("fault", ["reset", "stall"])
def test_api_connection_faults_past_the_last_try_are_a_clear_error(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, fault: str
) -> None:
    with FlakyProxy(small_sandbox.url, [fault] * 10) as proxy:
        settings = {**fast_config, "api_url": proxy.url, "request_timeout_seconds": 0.3}
        run = run_tap(tmp_path, settings)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    error = run.error
    # The first call of a sync lists the tasks it could adopt (tasks/ledger.py).
    assert "GET /tasks failed after 4 tries" in error
    assert "try again later" in error
    assert proxy.seen == [fault] * 4
    assert small_sandbox.requests == []


@pytest.mark.parametrize(
    ("settings", "answer"),
    [
        # A wrong secret is refused at the first call, the listing of the tasks to adopt.
        ({"access_token_secret": "sbx_wrong"}, (401, "access_token_id", [])),
        # The token lists its own chain's tasks; creating one for another chain is refused.
        ({"chain_id": 5678}, (403, "5678", [200])),
    ],
)
def test_401_and_403_are_not_retried_and_name_the_cause(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    settings: dict[str, Any],
    answer: tuple[int, str, list[int]],
) -> None:
    status, cause, before = answer

    run = run_tap(tmp_path, {**fast_config, **settings})

    assert run.returncode == 1
    assert [r.status for r in small_sandbox.requests] == [*before, status]
    assert cause in run.error
    assert small_sandbox.token_secret not in run.stderr
    assert "sbx_wrong" not in run.stderr


def test_task_gone_while_polling_is_a_404_not_retried(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("status", status=404, method="GET", path=FIRST_TASK)

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 1
    assert statuses(small_sandbox, "api", FIRST_TASK) == [404]
    error = run.error
    assert "the task is gone" in error


def test_400_on_task_creation_is_not_retried_and_quotes_spaazas_error(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    rule = {"field_name": "shoe_size", "field_type": "number", "operator": "is", "value": 42}

    run = run_tap(tmp_path, {**fast_config, "segment_rules": [rule]})

    assert run.returncode == 1
    assert [r.status for r in small_sandbox.requests if r.method == "POST"] == [400]
    error = run.error
    assert "HTTP 400" in error
    assert "shoe_size" in error
    assert "segment_rules" in error


def test_api_connection_refused_is_retried_then_a_clear_error(
    fast_config: dict[str, Any], tmp_path: Path
) -> None:
    with refusing_port() as closed_port:
        run = run_tap(tmp_path, {**fast_config, "api_url": f"http://127.0.0.1:{closed_port}"})

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "GET /tasks failed after 4 tries" in run.error  # the listing comes first
    # Not "unavailable or rate limiting": nothing listens there (issue 20's wrong advice).
    assert f"nothing listens at api_url http://127.0.0.1:{closed_port}" in run.error
    assert "is spaaza-sandbox running?" in run.error


# Storage faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, 0)])
def test_storage_5xx_and_429_are_retried(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    status: int,
    retry_after: int | None,
) -> None:
    extra = {} if retry_after is None else {"retry_after": retry_after}
    small_sandbox.inject("storage_status", status=status, times=2, **extra)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert statuses(small_sandbox, "storage", ".csv") == [status, status, 200]
    assert len(run.lines_with(f"storage answered HTTP {status}; retrying")) == 2
    assert len(small_sandbox.tasks) == 1


def test_storage_5xx_past_the_last_try_is_a_clear_error_and_keeps_the_bookmark(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    state = first_sync_state(small_sandbox, tmp_path, fast_config)
    small_sandbox.inject("storage_status", status=500, times=50)

    run = run_tap(tmp_path, fast_config, state=state)

    assert_failed_keeping_bookmark(run, state)
    error = run.error
    assert "Export download failed: storage answered HTTP 500" in error
    assert "3 retries" in error
    assert "run the sync again" in error
    assert statuses(small_sandbox, "storage", ".csv") == [500] * 4


def test_expired_url_is_refreshed_from_download_url_not_a_new_task(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("url_expired", times=2)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert len(small_sandbox.tasks) == 1
    assert statuses(small_sandbox, "api", "/download_url") == [200, 200, 200]
    assert statuses(small_sandbox, "storage", ".csv") == [403, 403, 200]


def test_url_refused_past_the_refresh_limit_is_a_clear_error(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("url_expired", times=50)

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 1
    error = run.error
    assert "storage kept refusing the signed URL (HTTP 403)" in error
    assert len(small_sandbox.tasks) == 1


@pytest.mark.parametrize(
    ("kind", "params"),
    [("drop_connection", {"after_bytes": 3000}), ("short_body", {"missing_bytes": 2500})],
)
def test_broken_body_resumes_with_range_and_emits_no_record_twice(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    kind: str,
    params: dict[str, Any],
) -> None:
    small_sandbox.inject(kind, **params)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    downloads = [r for r in small_sandbox.requests if r.server == "storage"]
    assert [r.status for r in downloads] == [200, 206]
    resumed_at = int(downloads[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert resumed_at > 0
    assert len(run.lines_with(f"resuming at byte {resumed_at}")) == 1


@pytest.mark.parametrize("mode", ["content-encoding", "raw"])
def test_gzip_either_way_reads_as_the_plain_file(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    plain = run_tap(tmp_path, fast_config)
    small_sandbox.inject("gzip", mode=mode)

    zipped = run_tap(tmp_path, fast_config)

    assert_every_user_once(zipped, small_sandbox)
    assert sorted(zipped.records, key=by_id) == sorted(plain.records, key=by_id)


def by_id(record: dict[str, Any]) -> int:
    """Sort key of records."""
    return int(record["id"])
