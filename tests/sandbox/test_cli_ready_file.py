"""The --ready-file never outlives its run: removed before binding, and when the sandbox stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

STALE = '{"url": "http://127.0.0.1:1", "token_id": "old", "token_secret": "old"}'


def _command(ready: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", str(port), "--users", "10",
            "--ready-file", str(ready)]  # fmt: skip


def test_ready_file_of_a_previous_run_is_removed_even_when_start_fails(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    ready.write_text(STALE, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            _command(ready, port), capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode != 0
    assert not ready.exists()


def test_ready_file_is_replaced_then_removed_when_the_sandbox_stops(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    ready.write_text(STALE, encoding="utf-8")
    process = subprocess.Popen(
        _command(ready, 0), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text(encoding="utf-8") != STALE):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sandbox never wrote its ready file"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert process.returncode == 0
    assert not ready.exists()
