"""Storage that misbehaves without saying so, through the tap's command line: whole files or none.

Each test runs the real CLI against the sandbox and checks the exit status, the one line that
explains a failure, the records and the bookmark.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import CliRun, run_tap

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


def assert_every_user_once(run: CliRun, sandbox: Sandbox) -> None:
    """The run succeeded and emitted each sandbox user exactly once."""
    assert run.returncode == 0, run.stderr
    ids = [r["id"] for r in run.records]
    assert len(ids) == len(set(ids)), "a record was emitted twice"
    assert set(ids) == {int(u["id"]) for u in sandbox.users()}


def assert_failed_keeping_bookmark_and_task(run: CliRun, state: dict[str, Any]) -> None:
    """The run failed with one ERROR line, emitted nothing, kept the bookmark and the task."""
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "Aborted!" not in run.stderr
    assert run.records == []
    kept = state["bookmarks"]["users"]["replication_key_value"]
    for written in run.states:
        assert written["bookmarks"]["users"]["replication_key_value"] == kept
    assert "in_flight_task" in run.states[-1]["bookmarks"]["users"], "the task is kept"


def assert_failed_keeping_bookmark_giving_the_task_up(run: CliRun, state: dict[str, Any]) -> None:
    """The run failed with one ERROR line, emitted nothing, kept the bookmark, gave the task up.

    A file corrupt at every download is corrupt for good: its task is given up (deleted,
    never adopted again), so the next run exports afresh instead of failing the same way.
    """
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.records == []
    kept = state["bookmarks"]["users"]["replication_key_value"]
    assert {s["bookmarks"]["users"]["replication_key_value"] for s in run.states} == {kept}
    assert "in_flight_task" not in run.states[-1]["bookmarks"]["users"], "the task is given up"


def storage_gets(sandbox: Sandbox) -> list[Any]:
    """The recorded requests to storage."""
    return [r for r in sandbox.requests if r.server == "storage"]


def url_requests(sandbox: Sandbox) -> int:
    """How many download URLs the tap asked for."""
    return sum(1 for r in sandbox.requests if r.path.endswith("/download_url"))


@pytest.fixture
def synced_state(small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path) -> Any:
    """The state a clean sync leaves; then 3 users more and the request log cleared."""
    run = run_tap(tmp_path, fast_config)
    assert run.returncode == 0, run.stderr
    small_sandbox.add_users(3)
    small_sandbox.request_log.clear()
    return run.states[-1]


# No length stated ---------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_body_without_length_that_ends_early_is_resumed_not_taken_as_whole(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, framing: str
) -> None:
    small_sandbox.inject("early_close", framing=framing)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    gets = storage_gets(small_sandbox)
    assert [r.status for r in gets] == [200, 206]
    assert gets[1].headers["Range"].startswith("bytes=")
    assert len(run.lines_with("ended without a stated length, and storage has more")) == 1


def test_body_without_length_is_whole_once_a_range_from_its_end_answers_416(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("early_close", after_bytes=10**9)  # the whole file, no length

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    gets = storage_gets(small_sandbox)
    assert [r.status for r in gets] == [200, 416]
    stored = small_sandbox.tasks[1001].file
    assert stored is not None
    size = stored.stat().st_size
    assert gets[1].headers["Range"] == f"bytes={size}-"


def test_body_that_keeps_ending_early_fails_and_keeps_the_bookmark(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    synced_state: dict[str, Any],
) -> None:
    small_sandbox.add_users(100)  # a file long enough to end early six times
    small_sandbox.inject("early_close", after_bytes=2000, times=50)

    run = run_tap(tmp_path, fast_config, state=synced_state)

    assert_failed_keeping_bookmark_and_task(run, synced_state)
    assert run.error.split("| ")[-1].startswith("Export download failed: short body")
    assert "5 resumes" in run.error
    assert "export task 1002 is kept" in run.error


# Integrity: MD5 and gzip ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"problem": "truncated", "mode": "content-encoding", "content_length": "sent"},
        {"problem": "truncated", "mode": "raw", "content_length": "sent"},
        {"problem": "bad_crc", "mode": "content-encoding", "content_length": "sent"},
        {"problem": "bad_crc", "mode": "raw", "content_length": "sent"},
    ],
    ids=lambda p: "-".join(p.values()),
)
def test_corrupt_gzip_once_is_downloaded_again_from_a_fresh_url(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, params: dict[str, str]
) -> None:
    small_sandbox.inject("bad_gzip", **params)

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert url_requests(small_sandbox) == 2
    assert len(run.lines_with("the downloaded file is corrupt")) == 1
    assert len(small_sandbox.tasks) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"problem": "truncated", "mode": "content-encoding", "content_length": "none"},
        {"problem": "truncated", "mode": "raw", "content_length": "full"},
        {"problem": "bad_crc", "mode": "raw", "content_length": "none"},
    ],
    ids=lambda p: "-".join(p.values()),
)
@pytest.mark.parametrize("if_range", ["honoured", "ignored"])
def test_corrupt_gzip_of_unproven_length_is_found_by_the_resume_and_restarted(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    params: dict[str, str],
    if_range: str,
) -> None:
    """A short or unstated length makes the tap resume; storage's tail is another file's.

    The resume names the spoiled body's ETag in ``If-Range``: storage that honours it sends
    the whole real file (200); storage that ignores it sends another file's tail (206), which
    the tap refuses, then fetches the file again without ``Range``.
    """
    small_sandbox.inject("bad_gzip", **params)
    if if_range == "ignored":
        small_sandbox.inject("ignore_if_range")

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    gets = storage_gets(small_sandbox)
    assert "Range" in gets[1].headers
    assert "If-Range" in gets[1].headers
    if if_range == "honoured":
        assert [r.status for r in gets] == [200, 200]
        return
    assert [r.status for r in gets] == [200, 206, 200]
    assert "Range" not in gets[2].headers


@pytest.mark.parametrize("problem", ["truncated", "bad_crc"])
def test_corrupt_gzip_twice_is_one_error_naming_the_task(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    synced_state: dict[str, Any],
    problem: str,
) -> None:
    # Corrupt at every download: task 1002 is given up and the window exported afresh once
    # (a task corrupt for good never wedges the next runs); 1003 is corrupt too.
    small_sandbox.inject("bad_gzip", problem=problem, content_length="sent", times=4)

    run = run_tap(tmp_path, fast_config, state=synced_state)

    assert_failed_keeping_bookmark_giving_the_task_up(run, synced_state)
    error = run.error
    assert "Export task 1003: the file is corrupt (" in error
    assert "does not match the ETag" in error
    assert "downloaded 2 times with fresh URLs" in error
    assert url_requests(small_sandbox) == 4
    assert run.lines_with("Giving export task 1002 up")


def test_body_changed_in_transit_is_caught_by_its_md5_and_downloaded_again(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("corrupt_body")

    run = run_tap(tmp_path, fast_config)

    assert_every_user_once(run, small_sandbox)
    assert [r.status for r in storage_gets(small_sandbox)] == [200, 200]
    assert len(run.lines_with("does not match the ETag")) == 1
    assert run.lines_with("MD5 matches storage's ETag")


def test_body_changed_in_transit_twice_fails_and_keeps_the_bookmark(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    synced_state: dict[str, Any],
) -> None:
    small_sandbox.inject("corrupt_body", times=4)  # for good: 1002 given up, 1003 too

    run = run_tap(tmp_path, fast_config, state=synced_state)

    assert_failed_keeping_bookmark_giving_the_task_up(run, synced_state)
    assert "Export task 1003: the file is corrupt (its MD5" in run.error
    assert run.lines_with("Giving export task 1002 up")


# Drip ---------------------------------------------------------------------------------------


def test_drip_is_cut_off_at_the_floor_and_resumed(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("slow_download", bytes_per_second=40, times=2)
    settings = {**fast_config, "request_timeout_seconds": 0.5}

    started = time.monotonic()
    run = run_tap(tmp_path, settings)

    assert_every_user_once(run, small_sandbox)
    assert time.monotonic() - started < 30
    assert len(run.lines_with("below the floor of")) == 2
    gets = storage_gets(small_sandbox)
    assert len(gets) == 3
    assert all("Range" in r.headers for r in gets[1:])


def test_endless_drip_fails_clearly_keeping_the_task_for_the_next_run(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    synced_state: dict[str, Any],
) -> None:
    small_sandbox.inject("slow_download", bytes_per_second=40, times=50)
    settings = {**fast_config, "request_timeout_seconds": 0.5}

    run = run_tap(tmp_path, settings, state=synced_state)

    assert_failed_keeping_bookmark_and_task(run, synced_state)
    error = run.error
    assert "Export download failed: storage sent" in error
    assert "below the floor of 16384 bytes/s" in error
    assert "5 resumes" in error
    small_sandbox.clear_faults()
    rerun = run_tap(tmp_path, fast_config, state=run.states[-1])
    assert rerun.returncode == 0, rerun.stderr
    assert len(small_sandbox.tasks) == 2  # the first sync's and this one's, reused
    assert {r["id"] for r in rerun.records} >= {int(u["id"]) for u in small_sandbox.users()[-3:]}


# Plain http ---------------------------------------------------------------------------------


def test_download_url_on_plain_http_to_another_host_is_refused(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    synced_state: dict[str, Any],
) -> None:
    small_sandbox.inject("insecure_download_url", times=5)

    run = run_tap(tmp_path, fast_config, state=synced_state)

    assert_failed_keeping_bookmark_and_task(run, synced_state)
    error = run.error
    assert "the download URL is plain http to storage.example.com" in error
    assert "X-Amz" not in run.stderr
    assert storage_gets(small_sandbox) == []
    assert run.lines_with("WARNING") == []


# Local disk ---------------------------------------------------------------------------------


def test_temp_dir_removed_during_the_export_wait_is_one_line_and_the_task_is_reused(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    small_sandbox.set_options(task_base_seconds=1.5)
    settings = {**fast_config, "poll_interval_seconds": 0.2, "max_poll_interval_seconds": 0.2}

    def remove_once_the_task_exists() -> None:
        deadline = time.monotonic() + 30
        while not small_sandbox.tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        spool_dir.rmdir()

    remover = threading.Thread(target=remove_once_the_task_exists)
    remover.start()
    run = run_tap(tmp_path, settings, env={"TMPDIR": str(spool_dir)})
    remover.join()

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.records == []
    error = run.error
    assert f"Local I/O failed creating the export file in {spool_dir} (" in error
    assert "point TMPDIR at one that does" in error
    assert "export task 1001 is kept and reused by the next run" in error
    assert run.states[-1]["bookmarks"]["users"]["in_flight_task"]["id"] == 1001

    spool_dir.mkdir()
    rerun = run_tap(tmp_path, settings, state=run.states[-1], env={"TMPDIR": str(spool_dir)})
    assert_every_user_once(rerun, small_sandbox)
    assert len(small_sandbox.tasks) == 1
