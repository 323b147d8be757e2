"""Peak RSS of a sandbox process while it exports and serves a 1,000,000-user file."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from harness import PeakRss, export_url, start_sandbox

BOUND_MB = 300


def export_and_download(info: dict[str, Any]) -> int:
    """Run one full export through the API and stream the file; return its size in bytes."""
    size = 0
    with requests.get(export_url(info, "benchmark"), stream=True, timeout=60) as response:
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
