"""The sandbox streams exports: its RSS stays flat while it writes and serves a large file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
import requests
from sandbox_client import EXPORT_TARGET

if TYPE_CHECKING:
    from pathlib import Path

USERS = 100_000
#: Holding 100k rows in memory would take well over 200 MB; streaming stays near the baseline.
BOUND_MB = 100


@pytest.mark.slow
def test_a_100k_user_export_is_served_with_flat_memory(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0", "--users", str(USERS),
         "--task-base-seconds", "0", "--task-seconds-per-1k", "0", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        watched = psutil.Process(process.pid)
        while not stop.is_set():
            peak = max(peak, watched.memory_info().rss)
            time.sleep(0.02)

    try:
        while not ready.exists():
            assert process.poll() is None
            time.sleep(0.05)
        info = json.loads(ready.read_text(encoding="utf-8"))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
        body = {"chain": info["chain_id"], "target": EXPORT_TARGET,
                "trigger": {"once": "2000-01-01T00:00:00Z"}}  # fmt: skip
        task = requests.post(info["url"] + "/tasks", json=body, headers=headers, timeout=10).json()
        base = f"{info['url']}/tasks/{task['id']}"
        assert (
            requests.post(base + "/execute", headers=headers, timeout=120).json()["code"] == "DONE"
        )
        url = requests.get(base + "/download_url", headers=headers, timeout=10).json()["url"]
        lines, tail, marker = 0, b"", b"@example.com"
        with requests.get(url, stream=True, timeout=60) as response:
            for chunk in response.iter_content(1 << 16):
                window = tail + chunk
                lines += window.count(marker)
                tail = window[-(len(marker) - 1) :]
        stop.set()
        sampler.join()
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
    assert lines == USERS
    assert 0 < peak < BOUND_MB * 1024 * 1024
