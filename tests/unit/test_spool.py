"""The export file on disk: nameless while it lives, gone with the process, read as it grows."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.download.spool import (
    Spool,
    SpoolClosedError,
    SpoolRestartedError,
)
from tap_spaaza_users.errors import SpaazaLocalIOError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

LOGGER = logging.getLogger("test_spool")


def names_in(directory: Path) -> set[str]:
    """Every file and directory under ``directory``, relative to it."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def open_deleted_files(pid: int, directory: Path) -> list[str]:
    """The files process ``pid`` holds open in ``directory`` that have no name any more."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(str(directory)) and target.endswith("(deleted)"):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to see open files")
def test_sigkill_mid_emission_leaves_no_export_data_and_touches_no_file_it_did_not_make(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(users=3000, seed=22)
    private_tmp = tmp_path / "tmp"
    (private_tmp / "tap-spaaza-users-k2j4h1").mkdir(parents=True)
    (private_tmp / "tap-spaaza-users-k2j4h1" / "User_Export-7.csv").write_text("id\n1\n")
    (private_tmp / "User_Export-8.csv").write_text("id\n2\n")
    age_leftovers(private_tmp)
    (private_tmp / "unrelated.txt").write_text("not ours")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(sandbox.tap_config(**fast_settings)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    argv = [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)]
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**env, "TMPDIR": str(private_tmp)},
    ) as tap:
        assert tap.stdout is not None
        emitted = 0
        while emitted < 1000:
            line = tap.stdout.readline()
            assert line, "the tap ended before emitting 1000 records"
            emitted += json.loads(line)["type"] == "RECORD"
        spools = open_deleted_files(tap.pid, private_tmp)
        names_while_emitting = names_in(private_tmp)
        tap.send_signal(signal.SIGKILL)
        tap.stdout.read()
        tap.wait(30)

    # A user's folder and a Console export that only look like names the tap once used
    # are theirs: never deleted, however old.
    users_files = {
        "unrelated.txt",
        "tap-spaaza-users-k2j4h1",
        "tap-spaaza-users-k2j4h1/User_Export-7.csv",
        "User_Export-8.csv",
    }
    assert len(spools) == 1, "the export is held in one nameless file in the temp dir"
    assert names_while_emitting == users_files
    assert names_in(private_tmp) == users_files


def age_leftovers(directory: Path, seconds: float = 3600) -> None:
    """Date the files named like the tap's of old in ``directory`` ``seconds`` back."""
    then = time.time() - seconds
    for path in [*directory.glob("tap-spaaza-users-*/*"), *directory.glob("tap-spaaza-users-*")]:
        os.utime(path, (then, then))
    for path in directory.glob("User_Export-*.csv"):
        os.utime(path, (then, then))


def test_spool_has_no_name_and_frees_its_space_on_close(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        spool.finish()
        assert names_in(tmp_path) == set()
        with spool.reader() as reader:
            assert reader.read() == b"id\n1\n"
    assert names_in(tmp_path) == set()


def test_reader_follows_the_writer_until_it_finishes(tmp_path: Path) -> None:
    chunks = [b"id,name\n", b"1,Ann\n", b"2,Bo", b"b\n"]
    with Spool(str(tmp_path)) as spool:

        def write_slowly() -> None:
            for chunk in chunks:
                time.sleep(0.05)
                spool.write(chunk)
            spool.finish()

        writer = threading.Thread(target=write_slowly)
        writer.start()
        with spool.reader() as reader:
            assert reader.read() == b"".join(chunks)  # blocked until the end, missed nothing
        writer.join()


def test_reader_raises_the_writers_failure_when_it_reaches_it(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        spool.abort(SpaazaLocalIOError("disk gone"))
        with spool.reader() as reader, pytest.raises(SpaazaLocalIOError, match="disk gone"):
            reader.read()


def test_spool_in_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(SpaazaLocalIOError) as caught:
        Spool(str(missing), task_id=1001)
    message = str(caught.value)
    assert message.startswith(f"Local I/O failed creating the export file in {missing} (")
    assert "export task 1001 is kept and reused by the next run" in message


def in_thread(action: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``action`` in a thread; what it returned or raised lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_until_blocked(thread: threading.Thread) -> None:
    """Wait until ``thread`` waits on a condition (the spool's), or fail after 5 s.

    Joining for a moment and finding the thread alive proves nothing when it was not yet
    scheduled; its own frames show it waiting.
    """
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or 0)
        while frame is not None:
            if frame.f_code.co_name == "wait" and frame.f_code.co_filename == threading.__file__:
                return
            frame = frame.f_back
        assert thread.is_alive(), "it returned instead of waiting"
        time.sleep(0.01)
    msg = "it never waited"
    raise AssertionError(msg)


def test_reader_that_began_raises_when_the_writer_starts_over(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        with spool.reader() as reader:
            assert reader.read(5) == b"id\n1\n"
            spool.restart()
            with pytest.raises(SpoolRestartedError):
                reader.read(1)
        spool.write(b"id\n2\n")
        spool.finish()
        with spool.reader() as again:
            assert again.read() == b"id\n2\n"


def test_reader_waits_for_min_bytes_or_the_whole_file(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        thread, outcome = in_thread(lambda: spool.reader(min_bytes=100).read(3))
        wait_until_blocked(thread)  # 5 bytes of the 100 it waits for
        assert outcome == []
        spool.announce(10_000)  # storage said how long the file is: start at once
        thread.join(5)
        assert outcome == [b"id\n"]

        spool.restart()
        spool.write(b"id\n")
        thread, outcome = in_thread(lambda: spool.reader(min_bytes=100).read())
        wait_until_blocked(thread)
        assert outcome == []
        spool.finish()  # whole, however small
        thread.join(5)
        assert outcome == [b"id\n"]


def test_settle_waits_for_the_writers_verdict(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        reader = spool.reader()
        reader.read(2)
        thread, outcome = in_thread(reader.settle)
        wait_until_blocked(thread)  # no verdict yet
        assert outcome == []
        spool.restart()
        thread.join(5)
        assert len(outcome) == 1
        assert isinstance(outcome[0], SpoolRestartedError)

        reader = spool.reader()
        spool.write(b"id\n1\n")
        reader.read(2)
        spool.abort(SpaazaLocalIOError("disk gone"))
        with pytest.raises(SpaazaLocalIOError, match="disk gone"):
            reader.settle()

    with Spool(str(tmp_path)) as spool:
        spool.write(b"id\n1\n")
        reader = spool.reader()
        reader.read(2)
        spool.finish()
        reader.close()
        reader.settle()  # the file is proven whole: the reader's own finding stands


def test_writer_stops_once_the_spool_is_closed(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.write(b"id\n")
    spool.close()
    with pytest.raises(SpoolClosedError):
        spool.write(b"1\n")
    with pytest.raises(SpoolClosedError):
        spool.restart()
