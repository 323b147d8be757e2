"""Parsing while the file downloads, against the sandbox: every download guarantee still holds.

The tap reads files under ``overlap_from_bytes`` only once they are proven whole; these tests
set it to 0 so the sandbox's small files are parsed while they arrive, with storage throttled
so that the first rows are read long before the last byte comes.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import SyncOutput, parse_messages

from tap_spaaza_users.errors import SpaazaDownloadError
from tap_spaaza_users.streams import UsersStream
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

DOWNLOADED = "Downloaded export file"
READ_AGAIN = "reading it again from its first row"


class _Output(io.BytesIO):
    """Standard output that calls a hook the moment the first RECORD is written."""

    def __init__(self, on_first_record: Callable[[], None]) -> None:
        super().__init__()
        self._hook: Callable[[], None] | None = on_first_record

    def write(self, data: Any) -> int:
        if self._hook is not None and b'"RECORD"' in bytes(data):
            hook, self._hook = self._hook, None
            hook()
        return super().write(data)


@dataclass
class Watched:
    """A sync's output, and what was logged by the time its first record was written."""

    output: SyncOutput
    logged_before_first_record: list[str] = field(default_factory=list)


def sync_watching_first_record(
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    *,
    state: dict[str, Any] | None = None,
    on_first_record: Callable[[], None] = lambda: None,
) -> Watched:
    """Run a sync in-process; note the log lines written before its first RECORD."""
    watched = Watched(SyncOutput())

    def first_record() -> None:
        watched.logged_before_first_record = [r.getMessage() for r in caplog.records]
        on_first_record()

    raw = _Output(first_record)
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    tap = TapSpaazaUsers(config=config, state=state, parse_env_config=False)
    with caplog.at_level(logging.INFO), contextlib.redirect_stdout(stdout):
        try:
            tap.sync_all()
        except Exception as exc:  # noqa: BLE001
            watched.output.error = exc
        stdout.flush()
    watched.output.messages = parse_messages(raw.getvalue().decode("utf-8"))
    return watched


def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The log lines holding ``text``."""
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def storage_statuses(sandbox: Sandbox) -> list[int]:
    """The statuses storage answered, in order."""
    return [r.status for r in sandbox.requests if r.server == "storage"]


def url_requests(sandbox: Sandbox) -> int:
    """How many download URLs the tap asked for."""
    return sum(1 for r in sandbox.requests if r.path.endswith("/download_url"))


def assert_every_user_with_right_values(
    output: SyncOutput, sandbox: Sandbox, expected: dict[int, dict[str, Any]]
) -> None:
    """Each user emitted, its last emission as a clean sync emits it; the bookmark is right."""
    assert output.error is None, output.error
    last = {record["id"]: record for record in output.records}
    assert set(last) == {int(u["id"]) for u in sandbox.users()}
    assert last == expected
    assert output.bookmark == max(record["created_date"] for record in expected.values())


@pytest.fixture
def overlap_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse every file while it downloads, however small."""
    monkeypatch.setattr(UsersStream, "overlap_from_bytes", 0)


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox whose file takes a few hundred kB."""
    return sandbox_factory(users=1500, seed=15)


@pytest.fixture
def config(sandbox: Sandbox, fast_settings: dict[str, Any]) -> dict[str, Any]:
    """Tap settings for it, finished tasks kept (each sync exports the whole file)."""
    return sandbox.tap_config(**fast_settings)


@pytest.fixture
def clean(
    sandbox: Sandbox, config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> dict[int, dict[str, Any]]:
    """The records of a clean sync, by id (then logs and requests are cleared)."""
    watched = sync_watching_first_record(config, caplog)
    assert watched.output.error is None
    caplog.clear()
    sandbox.request_log.clear()
    return {record["id"]: record for record in watched.output.records}


@pytest.mark.usefixtures("overlap_always")
def test_first_record_is_emitted_while_the_file_is_still_downloading(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    clean: dict[int, dict[str, Any]],
) -> None:
    stored = sandbox.tasks[1001].file
    assert stored is not None
    sandbox.set_options(storage_bytes_per_second=stored.stat().st_size / 4)  # about 4 s

    watched = sync_watching_first_record(config, caplog)

    assert_every_user_with_right_values(watched.output, sandbox, clean)
    assert len(watched.output.records) == len(clean), "no user twice"
    assert watched.logged_before_first_record, "the hook saw the log"
    assert not [line for line in watched.logged_before_first_record if DOWNLOADED in line]
    assert len(logged(caplog, DOWNLOADED)) == 1, "the download finished after the first record"


@pytest.mark.usefixtures("overlap_always")
@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_overlapped_download_resumes_after_an_early_close_and_proves_its_length(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    clean: dict[int, dict[str, Any]],
    framing: str,
) -> None:
    stored = sandbox.tasks[1001].file
    assert stored is not None
    size = stored.stat().st_size
    sandbox.set_options(storage_bytes_per_second=size / 3)
    sandbox.inject("early_close", framing=framing)  # half the file, no length stated

    watched = sync_watching_first_record(config, caplog)

    assert_every_user_with_right_values(watched.output, sandbox, clean)
    assert len(watched.output.records) == len(clean), "a resume appends: no user twice"
    assert storage_statuses(sandbox) == [200, 206]
    assert not [line for line in watched.logged_before_first_record if DOWNLOADED in line]
    assert len(logged(caplog, "ended without a stated length, and storage has more")) == 1
    assert logged(caplog, READ_AGAIN) == []


@pytest.mark.usefixtures("overlap_always")
def test_url_expired_mid_read_is_refreshed_and_the_read_goes_on(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    clean: dict[int, dict[str, Any]],
) -> None:
    stored = sandbox.tasks[1001].file
    assert stored is not None
    size = stored.stat().st_size
    sandbox.set_options(storage_bytes_per_second=size / 3)
    sandbox.inject("drop_connection", after_bytes=size // 2)
    tasks_before = len(sandbox.tasks)

    # Once rows are being emitted, the URL in use expires: the resume after the drop is
    # refused, and a fresh URL continues from the same byte.
    watched = sync_watching_first_record(
        config, caplog, on_first_record=lambda: sandbox.inject("url_expired")
    )

    assert_every_user_with_right_values(watched.output, sandbox, clean)
    assert len(watched.output.records) == len(clean), "no user twice"
    assert storage_statuses(sandbox) == [200, 403, 206]
    assert url_requests(sandbox) == 2
    assert len(sandbox.tasks) == tasks_before, "a fresh URL, not a new export task"
    assert logged(caplog, READ_AGAIN) == []


@pytest.mark.usefixtures("overlap_always")
@pytest.mark.parametrize("problem", ["bad_crc", "truncated"])
def test_gzip_found_corrupt_after_rows_were_emitted_is_read_again_from_its_first_row(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    clean: dict[int, dict[str, Any]],
    problem: str,
) -> None:
    stored = sandbox.tasks[1001].file
    assert stored is not None
    sandbox.set_options(storage_bytes_per_second=stored.stat().st_size / 12)  # gzip: ~3 s
    sandbox.inject("bad_gzip", problem=problem, mode="content-encoding", content_length="sent")

    watched = sync_watching_first_record(config, caplog)

    output = watched.output
    assert_every_user_with_right_values(output, sandbox, clean)
    assert not [line for line in watched.logged_before_first_record if DOWNLOADED in line]
    assert len(logged(caplog, "the downloaded file is corrupt")) == 1
    assert len(logged(caplog, READ_AGAIN)) == 1
    assert url_requests(sandbox) == 2
    # The re-read emits the whole new file once: its last len(clean) records are every user.
    assert len(output.records) > len(clean), "rows were emitted before the corruption showed"
    assert {r["id"] for r in output.records[-len(clean) :]} == set(clean)
    emitted = logged(caplog, "Emitted ")
    assert len(emitted) == 1
    assert emitted[0].startswith(f"Emitted {len(clean)} users from task ")
    assert " 0 already emitted this sync left out" in emitted[0]
    assert ", 0 of them repeated in the file" in emitted[0], "the file's counts started over"


@pytest.mark.usefixtures("overlap_always")
def test_download_failing_after_rows_were_emitted_keeps_the_bookmark_and_the_task(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = sync_watching_first_record(config, caplog).output
    assert first.error is None
    new_ids = set(sandbox.add_users(1500))  # the next file: about 500 kB
    sandbox.set_options(storage_bytes_per_second=100_000)
    sandbox.inject("early_close", after_bytes=20_000, times=50)  # 6 tries: a quarter of it

    failed = sync_watching_first_record(config, caplog, state=first.final_state).output

    assert isinstance(failed.error, SpaazaDownloadError)
    assert str(failed.error).startswith("Export download failed: short body")
    assert "The bookmark did not move" in str(failed.error)
    assert "export task 1002 is kept" in str(failed.error)
    assert failed.records, "rows were emitted while the file was arriving"
    for written in failed.states:
        assert written["bookmarks"]["users"]["replication_key_value"] == first.bookmark
    assert failed.final_state["bookmarks"]["users"]["in_flight_task"]["id"] == 1002

    sandbox.clear_faults()
    sandbox.set_options(storage_bytes_per_second=None)
    rerun = sync_watching_first_record(config, caplog, state=failed.final_state).output
    assert rerun.error is None
    assert len(sandbox.tasks) == 2, "the failed run's task is reused"
    assert new_ids <= rerun.ids
    assert rerun.bookmark == max(u["created_date"] for u in rerun.records)


def test_small_file_is_read_only_once_proven_whole(
    sandbox: Sandbox,
    config: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    clean: dict[int, dict[str, Any]],
) -> None:
    stored = sandbox.tasks[1001].file
    assert stored is not None
    sandbox.set_options(storage_bytes_per_second=stored.stat().st_size / 2)
    assert stored.stat().st_size < UsersStream.overlap_from_bytes

    watched = sync_watching_first_record(config, caplog)

    assert_every_user_with_right_values(watched.output, sandbox, clean)
    assert [line for line in watched.logged_before_first_record if DOWNLOADED in line]
