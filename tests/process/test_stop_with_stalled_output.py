"""A stop signal ends the tap within seconds even when the reader of its output stopped reading.

Real tap processes write into real pipes that the test stops reading once they are full (a
target busy flushing, a target that hung). SIGTERM, SIGINT, either twice, or both, must end
the tap within ``BOUND_SECONDS`` with 143 or 130, every line it wrote whole, and no STATE
after records it did not write.
"""

from __future__ import annotations

import fcntl
import json
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

#: The issue's bound: the tap ends within this many seconds of the first signal.
BOUND_SECONDS = 10

#: The signals sent (0.2 s apart), and the status the first one's exit has.
STOPS: list[tuple[list[signal.Signals], int]] = [
    ([signal.SIGTERM], 143),
    ([signal.SIGINT], 130),
    ([signal.SIGTERM, signal.SIGTERM], 143),
    ([signal.SIGINT, signal.SIGINT], 130),
    ([signal.SIGTERM, signal.SIGINT], 143),
]


def unread_bytes(process: subprocess.Popen[bytes]) -> int:
    """How many bytes wait unread in the process's stdout pipe."""
    assert process.stdout is not None
    raw = fcntl.ioctl(process.stdout.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def start_tap(tmp_path: Path, config: dict[str, Any], run: int) -> subprocess.Popen[bytes]:
    """Start the tap writing into a pipe the test does not read."""
    config_path = tmp_path / f"config-{run}.json"
    config_path.write_text(json.dumps(config))
    with (tmp_path / f"stderr-{run}.log").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


def wait_until_stalled(process: subprocess.Popen[bytes]) -> None:
    """Wait until the pipe holds data and the tap has stopped adding to it (it is blocked)."""
    deadline = time.monotonic() + 60
    last, steady_since = -1, time.monotonic()
    while True:
        assert process.poll() is None, "the tap ended before its output filled the pipe"
        assert time.monotonic() < deadline, "the tap never filled the pipe"
        now, unread = time.monotonic(), unread_bytes(process)
        if unread != last:
            last, steady_since = unread, now
        elif unread > 32_768 and now - steady_since > 0.3:
            return
        time.sleep(0.05)


def stop_all(processes: list[subprocess.Popen[bytes]], stops: list[list[signal.Signals]]) -> None:
    """Send each process its signals, all at once (a second signal 0.2 s after the first)."""
    for process, signals in zip(processes, stops, strict=True):
        process.send_signal(signals[0])
    time.sleep(0.2)
    for process, signals in zip(processes, stops, strict=True):
        for signum in signals[1:]:
            process.send_signal(signum)


def check_stopped(process: subprocess.Popen[bytes], status: int, deadline: float) -> None:
    """Wait for the exit by ``deadline``; check the status and that every line is whole."""
    try:
        code = process.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the tap did not end within {BOUND_SECONDS} s of the signal")
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    assert code == status
    assert output.endswith(b"\n"), "the last line was cut"
    messages = [json.loads(line) for line in output.splitlines()]  # every line whole
    assert any(m["type"] == "RECORD" for m in messages)
    seen = False
    for message in messages:  # no STATE with a bookmark before a record was written
        seen = seen or message["type"] == "RECORD"
        if message["type"] == "STATE" and not seen:
            assert "replication_key_value" not in message["value"]["bookmarks"]["users"]


def test_stop_signals_end_a_tap_whose_reader_stopped_reading_20_of_20(
    sandbox_factory: Any,
    tmp_path: Path,
) -> None:
    sandbox: Sandbox = sandbox_factory(
        users=600, seed=5, task_base_seconds=0.0, task_seconds_per_1k_users=0.0
    )
    config = sandbox.tap_config(delete_completed_tasks=False)
    tries = [STOPS[n % len(STOPS)] for n in range(20)]
    for first in range(0, len(tries), len(STOPS)):  # a few at a time: the machine is small
        batch = tries[first : first + len(STOPS)]
        processes = [start_tap(tmp_path, config, first + n) for n in range(len(batch))]
        try:
            for process in processes:
                wait_until_stalled(process)
            deadline = time.monotonic() + BOUND_SECONDS
            stop_all(processes, [signals for signals, _ in batch])
            for process, (_, status) in zip(processes, batch, strict=True):
                check_stopped(process, status, deadline)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
                if process.stdout is not None:
                    process.stdout.close()  # the pipe of a tap that ended early too
