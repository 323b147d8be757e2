"""Benchmark: how the tap's stages overlap, on a slow storage link and over a windowed backfill.

Two cases, each measured against its own parts in the same run:

- ``--case link``: storage throttled to ``--storage-bandwidth`` bytes/s. The tap's wall after
  the export is DONE, against the download alone (plain ``requests`` at the same rate) and the
  tap's wall after DONE with the link unlimited (its parsing). Serial stages cost the sum of the
  two; overlapped ones approach the longer one. Also the tap's own download time inside the
  throttled run (its log line), its peak RSS and the ratio of each repeat.
- ``--case backfill``: a backfill of ``--windows`` windows whose exports take ``--task-seconds``
  (T) each. The tap's whole run, against N x (T + load), the windows strictly in turn, and the
  ideal N x max(T, load) + min(T, load) of exports prepared while earlier windows load. The
  load of a window is measured in the same run, with exports that take no time.

Both report what the tap does, whichever way it is built.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, cast

import requests
from harness import PeakRss, delete_tap_tasks, export_url, start_sandbox

LINK_TARGET = 1.1
DONE = re.compile(r"Export task \d+ is DONE")
CREATED = re.compile(r"Created export task \d+")
DOWNLOADED = re.compile(r"Downloaded export file: (\d+) bytes in ([\d.]+) s")


@dataclass
class TapRun:
    """One tap run: seconds after its first DONE, its whole wall, the export tasks it made.

    Also its peak RSS, and the size and seconds of its (last) download, from its log line.
    """

    after_done: float
    wall: float
    tasks: int
    peak_rss: int = 0
    bytes: int = 0
    download_seconds: float = 0.0


def set_options(info: dict[str, Any], **options: Any) -> None:  # noqa: ANN401
    """Change sandbox options (``storage_bytes_per_second``, ``task_base_seconds``, ...)."""
    answer = requests.post(f"{info['url']}/_sandbox/options", json=options, timeout=30)
    answer.raise_for_status()


def tap_command() -> list[str]:
    """The tap next to this interpreter."""
    beside = Path(sys.executable).parent / "tap-spaaza-users"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "tap_spaaza_users"]


def run_tap(info: dict[str, Any], workdir: Path, **settings: Any) -> TapRun:  # noqa: ANN401
    """Run the tap (stdout to /dev/null) with the sandbox's connection and ``settings``."""
    config = {
        "api_url": info["url"],
        "chain_id": info["chain_id"],
        "access_token_id": info["token_id"],
        "access_token_secret": info["token_secret"],
        "poll_interval_seconds": 0.05,
        "poll_max_interval_seconds": 0.2,
        **settings,
    }
    path = workdir / "stages-config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    delete_tap_tasks(info)
    started = time.perf_counter()
    done_at: list[float] = []
    tasks = 0
    downloaded, download_seconds = 0, 0.0
    process = subprocess.Popen(
        [*tap_command(), "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None  # noqa: S101
    tail: list[str] = []
    with PeakRss(process.pid) as rss:
        for line in process.stderr:
            tail = [*tail[-20:], line]
            tasks += bool(CREATED.search(line))
            if not done_at and DONE.search(line):
                done_at.append(time.perf_counter())
            if match := DOWNLOADED.search(line):
                downloaded, download_seconds = int(match.group(1)), float(match.group(2))
        code = process.wait()
    ended = time.perf_counter()
    if code != 0 or not done_at:
        msg = f"the tap failed (exit {code}):\n{''.join(tail)}"
        raise RuntimeError(msg)
    return TapRun(
        after_done=ended - done_at[0],
        wall=ended - started,
        tasks=tasks,
        peak_rss=rss.peak,
        bytes=downloaded,
        download_seconds=download_seconds,
    )


def download_alone(info: dict[str, Any]) -> float:
    """Seconds to download a fresh export with plain requests, nothing parsed."""
    url = export_url(info, "download alone")
    started = time.perf_counter()
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        for _ in response.iter_content(chunk_size=1 << 20):
            pass
    return time.perf_counter() - started


def link_case(info: dict[str, Any], workdir: Path, rate: float, repeat: int) -> None:
    """The tap after DONE on a throttled link, against the download and the parse alone."""
    runs: dict[str, list[float]] = {"parse": [], "download": [], "tap": []}
    throttled: list[TapRun] = []
    for _ in range(repeat):
        set_options(info, storage_bytes_per_second=None)
        runs["parse"].append(run_tap(info, workdir).after_done)
        set_options(info, storage_bytes_per_second=rate)
        runs["download"].append(download_alone(info))
        throttled.append(run_tap(info, workdir))
        runs["tap"].append(throttled[-1].after_done)
    set_options(info, storage_bytes_per_second=None)
    median = {name: statistics.median(values) for name, values in runs.items()}
    longer = max(median["download"], median["parse"])
    serial = median["download"] + median["parse"]
    ratio = median["tap"] / longer
    verdict = "OK" if ratio <= LINK_TARGET else "ABOVE TARGET"
    size = throttled[0].bytes / 1e6
    print(f"link: storage at {rate / 1e6:.1f} MB/s, file {size:.1f} MB, repeat {repeat} (medians)")
    print(f"download alone           {median['download']:7.2f} s  (plain requests, nothing parsed)")
    print(f"parse (tap, link unlimited) {median['parse']:7.2f} s  after DONE")
    print(f"download + parse         {serial:7.2f} s  (stages in series)")
    rss = max(run.peak_rss for run in throttled) / 2**20
    print(f"tap at the link's rate   {median['tap']:7.2f} s  after DONE, peak RSS {rss:.0f} MB")
    inside = statistics.median(run.download_seconds for run in throttled)
    print(f"  its own download took {inside:.2f} s of that (the tap's log line)")
    each = [
        f"{tap / max(download, parse):.2f}"
        for download, parse, tap in zip(runs["download"], runs["parse"], runs["tap"], strict=True)
    ]
    print(f"  ratio of each repeat: {', '.join(each)}")
    print(f"ratio tap/max(download, parse): {ratio:.2f} (target <= {LINK_TARGET}) {verdict}")
    print(f"ratio tap/(download + parse): {median['tap'] / serial:.2f}")


def created_range(info: dict[str, Any]) -> tuple[datetime, datetime]:
    """The oldest and newest created_date of the sandbox's users (from one export)."""
    oldest = newest = ""
    with requests.get(export_url(info, "created range"), stream=True, timeout=60) as response:
        response.raise_for_status()
        response.raw.decode_content = True
        response.raw.auto_close = False
        text = io.TextIOWrapper(cast("IO[bytes]", response.raw), encoding="utf-8", newline="")
        for row in csv.DictReader(text):
            created = row["created_date"]
            oldest = min(oldest or created, created)
            newest = max(newest, created)
    parse = datetime.fromisoformat
    return parse(oldest).replace(tzinfo=timezone.utc), parse(newest).replace(tzinfo=timezone.utc)


def backfill_case(
    info: dict[str, Any], workdir: Path, windows: int, task_seconds: float, repeat: int
) -> None:
    """A backfill of about ``windows`` windows: wall against in-turn and overlapped ideals."""
    oldest, _ = created_range(info)
    start = oldest.replace(hour=0, minute=0, second=0, microsecond=0)
    span_days = (datetime.now(timezone.utc) - start) / timedelta(days=1)
    days = max(1, math.ceil(span_days / windows))
    settings = {"start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "backfill_window_days": days}
    loads: list[TapRun] = []
    walls: list[TapRun] = []
    for _ in range(repeat):
        set_options(info, task_base_seconds=0, task_seconds_per_1k_users=0)
        loads.append(run_tap(info, workdir, **settings))
        set_options(info, task_base_seconds=task_seconds, task_seconds_per_1k_users=0)
        walls.append(run_tap(info, workdir, **settings))
    set_options(info, task_base_seconds=0, task_seconds_per_1k_users=0)
    count = walls[0].tasks
    load = statistics.median(run.wall for run in loads) / max(count, 1)
    wall = statistics.median(run.wall for run in walls)
    in_turn = count * (task_seconds + load)
    ideal = count * max(task_seconds, load) + min(task_seconds, load)
    print(
        f"backfill: {count} windows of {days} days, exports of T = {task_seconds:.1f} s,"
        f" repeat {repeat} (medians)"
    )
    print(f"load per window          {load:7.2f} s  (the same run with exports taking no time)")
    print(f"tap, whole backfill      {wall:7.2f} s")
    print(f"N x (T + load)           {in_turn:7.2f} s  (windows strictly in turn)")
    print(f"N x max(T, load) + min   {ideal:7.2f} s  (exports prepared while windows load)")
    print(f"ratio tap/in-turn: {wall / in_turn:.2f}  ratio tap/ideal: {wall / ideal:.2f}")


def main() -> int:
    """Parse the options, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=["link", "backfill", "both"], default="both")
    parser.add_argument("--users", type=int, default=300_000, help="sandbox population")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (medians)")
    parser.add_argument(
        "--storage-bandwidth", type=float, default=20e6, help="link case: storage bytes/s"
    )
    parser.add_argument("--windows", type=int, default=8, help="backfill case: about N windows")
    parser.add_argument(
        "--task-seconds", type=float, default=5.0, help="backfill case: each export's duration"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        workdir = Path(tmp)
        process, info = start_sandbox(args.users, workdir)
        try:
            if args.case in {"link", "both"}:
                link_case(info, workdir, args.storage_bandwidth, args.repeat)
            if args.case in {"backfill", "both"}:
                backfill_case(info, workdir, args.windows, args.task_seconds, args.repeat)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
