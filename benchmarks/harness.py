"""What the benchmarks share: a sandbox subprocess, a plain-requests export, RSS sampling."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psutil
import requests

if TYPE_CHECKING:
    from pathlib import Path

TARGET = {"action": "export", "export_index": "users", "export_format": "csv"}


class PeakRss:
    """Samples a process's RSS in a thread and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        """Watch process ``pid``."""
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        """Sample until stopped (or the process is gone)."""
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:  # noqa: PYI034 - Self needs Python 3.11
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def start_sandbox(users: int, workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``spaaza-sandbox`` (tasks finish as soon as the file is written).

    Returns:
        The process and its connection details (url, chain_id, token_id, token_secret).
    """
    ready = workdir / f"ready-{users}.json"
    command = [
        sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0", "--users", str(users),
        "--task-base-seconds", "0", "--task-seconds-per-1k", "0", "--ready-file", str(ready),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready.exists():
        if process.poll() is not None:
            msg = "the sandbox exited before it was ready"
            raise RuntimeError(msg)
        time.sleep(0.05)
    return process, json.loads(ready.read_text(encoding="utf-8"))


def export_url(info: dict[str, Any], desc: str) -> str:
    """Create an export of every user with plain requests, run it, return its download URL."""
    api = info["url"]
    headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
    once = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"chain": info["chain_id"], "desc": desc, "target": TARGET, "trigger": {"once": once}}
    task = requests.post(f"{api}/tasks", json=body, headers=headers, timeout=30).json()
    state = requests.post(f"{api}/tasks/{task['id']}/execute", headers=headers, timeout=3600)
    if state.json()["code"] != "DONE":
        msg = f"export ended {state.json()['code']}"
        raise RuntimeError(msg)
    answer = requests.get(f"{api}/tasks/{task['id']}/download_url", headers=headers, timeout=30)
    return str(answer.json()["url"])


def delete_tap_tasks(info: dict[str, Any]) -> None:
    """Delete the export tasks an earlier tap run kept, so the next run exports afresh.

    A sync keeps the tasks it delivered for the next sync (given its state) to delete; a
    benchmark run starts without state and would adopt them instead of exporting.
    """
    api = info["url"]
    headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
    query: dict[str, str | int] = {"limit": 100, "action": "export"}
    listed = requests.get(f"{api}/tasks", params=query, headers=headers, timeout=30)
    listed.raise_for_status()
    for task in listed.json():
        if "[tap-spaaza-users:" in str(task.get("desc")):
            answer = requests.delete(f"{api}/tasks/{task['id']}", headers=headers, timeout=30)
            if answer.status_code not in {204, 404}:
                answer.raise_for_status()
