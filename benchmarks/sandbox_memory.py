"""Peak RSS of a sandbox process while it exports and serves a 1,000,000-user file."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests

BOUND_MB = 300
TARGET = {"action": "export", "export_index": "users", "export_format": "csv"}


class PeakRss:
    """Samples a process's RSS in a thread and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        """Watch process ``pid``."""
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        """Sample until stopped."""
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


def start_sandbox(users: int, workdir: Path) -> tuple[subprocess.Popen[bytes], dict]:
    """Start ``spaaza-sandbox`` in a subprocess; return it and its connection details."""
    ready = workdir / "ready.json"
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


def export_and_download(info: dict) -> int:
    """Run one full export through the API and stream the file; return its size in bytes."""
    headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
    once = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"chain": info["chain_id"], "desc": "benchmark", "target": TARGET,
            "trigger": {"once": once}}  # fmt: skip
    api = info["url"]
    task = requests.post(f"{api}/tasks", json=body, headers=headers, timeout=30).json()
    state = requests.post(f"{api}/tasks/{task['id']}/execute", headers=headers, timeout=3600)
    if state.json()["code"] != "DONE":
        msg = f"export ended {state.json()['code']}"
        raise RuntimeError(msg)
    url = requests.get(f"{api}/tasks/{task['id']}/download_url", headers=headers, timeout=30)
    size = 0
    with requests.get(url.json()["url"], stream=True, timeout=60) as response:
        for chunk in response.iter_content(chunk_size=1 << 16):
            size += len(chunk)
    return size


def measure(users: int) -> tuple[int, int, float]:
    """Return (peak RSS bytes, file bytes, seconds) of one export of ``users`` users."""
    with tempfile.TemporaryDirectory() as tmp:
        process, info = start_sandbox(users, Path(tmp))
        try:
            started = time.monotonic()
            with PeakRss(process.pid) as rss:
                size = export_and_download(info)
            return rss.peak, size, time.monotonic() - started
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> int:
    """Measure, print the peak RSS against the bound, and fail if it is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    peak, size, seconds = measure(args.users)
    peak_mb = peak / 1024 / 1024
    verdict = "OK" if peak_mb < BOUND_MB else "OVER THE BOUND"
    print(f"users:          {args.users:,}")
    print(f"file size:      {size / 1024 / 1024:,.1f} MB")
    print(f"export+serve:   {seconds:,.1f} s")
    print(f"peak RSS:       {peak_mb:,.1f} MB (bound {BOUND_MB} MB) {verdict}")
    return 0 if peak_mb < BOUND_MB else 1


if __name__ == "__main__":
    sys.exit(main())
