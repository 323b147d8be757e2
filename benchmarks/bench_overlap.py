"""Benchmark: on a slow link, parsing overlaps the download (wall after DONE vs the longer one)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from harness import PeakRss, export_url, start_sandbox

from tap_spaaza_users.download import download_export
from tap_spaaza_users.spool import Spool

TARGET = 1.1
LINK_BYTES_PER_SECOND = 20_000_000
DONE = re.compile(r"Export task \d+ is DONE")
DOWNLOADED = re.compile(r"Downloaded export file: (\d+) bytes in ([\d.]+) s")


@dataclass
class Measure:
    """One measured run: seconds after the export was DONE (or of the download), peak RSS."""

    seconds: float
    peak_rss: int = 0
    bytes: int = 0
    download_seconds: float = 0.0


def set_link(info: dict[str, Any], rate: float | None) -> None:
    """Throttle sandbox storage to ``rate`` bytes/s (None: as fast as loopback goes)."""
    answer = requests.post(
        f"{info['url']}/_sandbox/options", json={"storage_bytes_per_second": rate}, timeout=30
    )
    answer.raise_for_status()


def download_alone(info: dict[str, Any]) -> Measure:
    """The tap's own download of the file into its spool, nothing read: the link's time."""
    url = export_url(info, "download alone")
    logger = logging.getLogger("bench-overlap")
    with Spool() as spool:
        started = time.perf_counter()
        result = download_export(
            lambda: url,
            spool,
            timeout=60,
            user_agent="bench-overlap",
            logger=logger,
            max_retries=3,
            backoff_base=0.5,
            backoff_cap=5,
        )
        seconds = time.perf_counter() - started
    return Measure(seconds, bytes=result.bytes)


def tap_command() -> list[str]:
    """The tap as a module of this interpreter."""
    return [sys.executable, "-m", "tap_spaaza_users"]


def tap_after_done(info: dict[str, Any], workdir: Path) -> Measure:
    """Run the tap (stdout to /dev/null); seconds from its 'DONE' log line to its exit."""
    config = {
        "api_url": info["url"],
        "chain_id": info["chain_id"],
        "access_token_id": info["token_id"],
        "access_token_secret": info["token_secret"],
        "poll_interval_seconds": 0.05,
        "poll_max_interval_seconds": 0.2,
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    done_at: list[float] = []
    downloaded, download_seconds = 0, 0.0
    process = subprocess.Popen(
        [*tap_command(), "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with PeakRss(process.pid) as rss:
        assert process.stderr is not None  # noqa: S101
        for line in process.stderr:
            if not done_at and DONE.search(line):
                done_at.append(time.perf_counter())
            if match := DOWNLOADED.search(line):
                downloaded, download_seconds = int(match.group(1)), float(match.group(2))
        code = process.wait()
    ended = time.perf_counter()
    if code != 0 or not done_at:
        msg = f"the tap failed (exit {code}); run it by hand with {config_path} to see why"
        raise RuntimeError(msg)
    return Measure(ended - done_at[0], rss.peak, downloaded, download_seconds)


def measure(users: int, rate: float, repeat: int, workdir: Path) -> dict[str, list[Measure]]:
    """Download alone and overlapped at ``rate``, parse alone unlimited; interleaved runs."""
    process, info = start_sandbox(users, workdir)
    runs: dict[str, list[Measure]] = {"download": [], "parse": [], "overlap": []}
    try:
        for _ in range(repeat):
            set_link(info, rate)
            runs["download"].append(download_alone(info))
            set_link(info, None)
            runs["parse"].append(tap_after_done(info, workdir))
            set_link(info, rate)
            runs["overlap"].append(tap_after_done(info, workdir))
        return runs
    finally:
        process.terminate()
        process.wait(timeout=60)


def report(users: int, rate: float, repeat: int, runs: dict[str, list[Measure]]) -> None:
    """Print the medians and the ratio against the target."""
    median = {name: statistics.median(m.seconds for m in items) for name, items in runs.items()}
    size = runs["download"][0].bytes
    print(
        f"users: {users:,}  file: {size / 1e6:.1f} MB  link: {rate / 1e6:.0f} MB/s  "
        f"repeat: {repeat}  (medians; compare only within this run)"
    )
    print(f"download alone      {median['download']:7.2f} s  (the tap's download, nothing read)")
    print(f"parse alone         {median['parse']:7.2f} s  (the tap after DONE, link unlimited)")
    serial = median["download"] + median["parse"]
    print(f"serial sum          {serial:7.2f} s  (download, then parse: the tap before overlap)")
    rss = max(m.peak_rss for m in runs["overlap"]) / 2**20
    print(f"overlapped          {median['overlap']:7.2f} s  (the tap after DONE at the link's rate,"
          f" peak RSS {rss:.0f} MB)")  # fmt: skip
    inside = statistics.median(m.download_seconds for m in runs["overlap"])
    print(f"  its download took {inside:.2f} s while the file was parsed (the tap's log line)")
    each = [
        f"{o.seconds / max(d.seconds, p.seconds):.2f}"
        for d, p, o in zip(runs["download"], runs["parse"], runs["overlap"], strict=True)
    ]
    print(f"  ratio of each repeat: {', '.join(each)}")
    floor = max(median["download"], median["parse"])
    ratio = median["overlap"] / floor
    verdict = "OK" if ratio <= TARGET else "ABOVE TARGET"
    print(f"ratio overlapped/max(download, parse): {ratio:.2f} (target <= {TARGET}) {verdict}")


def main() -> int:
    """Parse the options, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=500_000, help="sandbox population")
    parser.add_argument(
        "--bandwidth", type=float, default=LINK_BYTES_PER_SECOND, help="storage bytes/s"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (medians)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
        runs = measure(args.users, args.bandwidth, args.repeat, Path(tmp))
        report(args.users, args.bandwidth, args.repeat, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
