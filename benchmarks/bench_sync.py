"""Benchmark: the tap end to end (per-record and BATCH) against a bare csv-to-json floor."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from harness import PeakRss, delete_tap_tasks, export_url, start_sandbox

PER_RECORD_TARGET = 1.1
BATCH_TARGET = 1.0
RSS_TARGET_MB = 150
#: The tap's modes: RECORD messages (None), BATCH files without and with gzip.
MODES: dict[str, str | None] = {"tap": None, "batch": "none", "batch-gzip": "gzip"}
EMITTED = re.compile(r"Emitted (\d+) users from task \d+ in ([\d.]+)s")
DONE = re.compile(r"Export task \d+ is DONE")


@dataclass
class Run:
    """One measured run: rows, seconds after the export was ready, end-to-end seconds."""

    rows: int
    work: float
    total: float = 0.0
    peak_rss: int = 0
    api_calls: int = 0
    storage_calls: int = 0
    convert: float = 0.0
    cpu: float = 0.0


def floor(info: dict[str, Any], workdir: Path) -> Run:
    """The bare floor, streaming: each CSV row to a JSON line as the body arrives, to /dev/null.

    The simplest fast way to do the tap's work: ``csv`` reads the decoded response stream while
    it downloads (no spool file, no second pass), ``json`` writes each row.
    """
    del workdir
    url = export_url(info, "floor")
    started = time.perf_counter()
    rows = 0
    with (
        requests.get(url, stream=True, timeout=60) as response,
        Path(os.devnull).open("w", encoding="utf-8") as sink,
    ):
        response.raise_for_status()
        response.raw.decode_content = True
        response.raw.auto_close = False  # the reader, not urllib3, closes it at the end
        source = io.TextIOWrapper(
            io.BufferedReader(response.raw, buffer_size=1 << 20), encoding="utf-8", newline=""
        )
        reader = csv.reader(source)
        header = next(reader)
        dumps, write = json.dumps, sink.write
        for row in reader:
            write(dumps(dict(zip(header, row, strict=False))) + "\n")
            rows += 1
    seconds = time.perf_counter() - started
    return Run(rows=rows, work=seconds, total=seconds, convert=seconds)


def tap_command() -> list[str]:
    """The installed ``tap-spaaza-users`` next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "tap-spaaza-users"
    found = str(beside) if beside.exists() else shutil.which("tap-spaaza-users")
    return [found] if found else [sys.executable, "-m", "tap_spaaza_users"]


def tap_config(
    info: dict[str, Any], batch_root: Path | None, compression: str = "gzip"
) -> dict[str, Any]:
    """Tap settings for the sandbox: fast polling, BATCH (jsonl) when a root is given."""
    config: dict[str, Any] = {
        "api_url": info["url"],
        "chain_id": info["chain_id"],
        "access_token_id": info["token_id"],
        "access_token_secret": info["token_secret"],
        "poll_interval_seconds": 0.05,
        "poll_max_interval_seconds": 0.2,
    }
    if batch_root is not None:
        config["batch_config"] = {
            "encoding": {"format": "jsonl", "compression": compression},
            "storage": {"root": batch_root.as_uri()},
            "batch_size": 100_000,
        }
    return config


def run_tap(info: dict[str, Any], workdir: Path, *, compression: str | None = None) -> Run:
    """Run the tap as a subprocess (stdout to /dev/null); time it, sample its RSS, count calls.

    Args:
        info: The sandbox's connection details.
        workdir: Where the config (and the batch files) go.
        compression: BATCH files with this compression ("gzip" or "none"); None for RECORDs.
    """
    batch_root = workdir / "batches" if compression else None
    config_path = workdir / "config.json"
    config = tap_config(info, batch_root, compression or "gzip")
    config_path.write_text(json.dumps(config), encoding="utf-8")
    delete_tap_tasks(info)
    cpu_before = children_cpu()
    requests.delete(f"{info['url']}/_sandbox/requests", timeout=30)
    done_at: list[float] = []
    emitted: list[tuple[int, float]] = []
    started = time.perf_counter()
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
            if match := EMITTED.search(line):
                emitted.append((int(match.group(1)), float(match.group(2))))
        code = process.wait()
    ended = time.perf_counter()
    cpu = children_cpu() - cpu_before
    if code != 0 or not done_at or not emitted:
        msg = f"the tap failed (exit {code}); run it by hand with {config_path} to see why"
        raise RuntimeError(msg)
    calls = requests.get(f"{info['url']}/_sandbox/requests", timeout=30).json()
    if batch_root is not None:
        shutil.rmtree(batch_root, ignore_errors=True)
    return Run(
        rows=sum(rows for rows, _ in emitted),
        convert=sum(seconds for _, seconds in emitted),
        work=ended - done_at[0],
        total=ended - started,
        peak_rss=rss.peak,
        api_calls=sum(1 for call in calls if call["server"] == "api"),
        storage_calls=sum(1 for call in calls if call["server"] == "storage"),
        cpu=cpu,
    )


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_run(runs: list[Run]) -> Run:
    """The medians of each measure over repeated runs."""
    return Run(
        rows=runs[0].rows,
        work=statistics.median(run.work for run in runs),
        total=statistics.median(run.total for run in runs),
        peak_rss=int(statistics.median(run.peak_rss for run in runs)),
        api_calls=int(statistics.median(run.api_calls for run in runs)),
        storage_calls=int(statistics.median(run.storage_calls for run in runs)),
        convert=statistics.median(run.convert for run in runs),
        cpu=statistics.median(run.cpu for run in runs),
    )


def measure(users: int, repeat: int, workdir: Path) -> dict[str, Run]:
    """The floor and each tap mode, interleaved ``repeat`` times; their medians."""
    process, info = start_sandbox(users, workdir)
    try:
        runs: dict[str, list[Run]] = {"floor": [], **{name: [] for name in MODES}}
        for _ in range(repeat):
            runs["floor"].append(floor(info, workdir))
            for name, compression in MODES.items():
                runs[name].append(run_tap(info, workdir, compression=compression))
        return {name: median_run(items) for name, items in runs.items()}
    finally:
        process.terminate()
        process.wait(timeout=60)


def report(users: int, repeat: int, results: dict[str, Run]) -> None:
    """Print rows/s, ratios against the floor and against RECORD, peak RSS and API calls."""
    base = results["floor"]
    print(f"users: {users:,}  repeat: {repeat}  (medians; compare only within this run)")
    speed = base.rows / base.work
    print(
        f"floor      {base.rows:>10,} rows  {base.work:7.2f} s  {speed:>10,.0f} rows/s"
        "  (streaming: csv reads the body as it downloads)"
    )
    for name in MODES:
        run = results[name]
        ratio = run.work / base.work
        target = PER_RECORD_TARGET if name == "tap" else BATCH_TARGET
        verdict = "OK" if ratio <= target else "ABOVE TARGET"
        print(
            f"{name:<10} {run.rows:>10,} rows  {run.work:7.2f} s  {run.rows / run.work:>10,.0f}"
            f" rows/s  (end to end {run.total:.2f} s, CPU {run.cpu:.2f} s, peak RSS"
            f" {run.peak_rss / 2**20:.0f} MB, {run.api_calls} API calls,"
            f" {run.storage_calls} storage requests)"
        )
        print(f"ratio {name}/floor: {ratio:.2f} (target <= {target}) {verdict}")
        print(f"  emitting after the download: {run.convert:.2f} s")
    record = results["tap"]
    for name in ("batch", "batch-gzip"):
        run = results[name]
        verdict = "OK" if run.work < record.work else "SLOWER THAN RECORD"
        print(
            f"ratio {name}/tap: {run.work / record.work:.2f} wall,"
            f" {run.cpu / record.cpu:.2f} CPU (target < 1) {verdict}"
        )
    rss_mb = record.peak_rss / 2**20
    verdict = "OK" if rss_mb <= RSS_TARGET_MB else "ABOVE TARGET"
    print(f"peak RSS per-record tap: {rss_mb:.0f} MB (target <= {RSS_TARGET_MB}) {verdict}")


def load_text(load: tuple[float, float, float]) -> str:
    """A load average as the report prints it."""
    return " ".join(f"{value:.1f}" for value in load)


def main() -> int:
    """Parse the options, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000, help="sandbox population")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (medians)")
    parser.add_argument(
        "--compare-sizes", action="store_true", help="also measure 100,000 users: RSS flatness"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        load_before = os.getloadavg()
        results = measure(args.users, args.repeat, Path(tmp))
        report(args.users, args.repeat, results)
        print(f"load average (1, 5, 15 min): {load_text(load_before)} at the start,"
              f" {load_text(os.getloadavg())} at the end")  # fmt: skip
        if args.compare_sizes:
            small = measure(100_000, args.repeat, Path(tmp))
            print("\npeak RSS by population (per-record / BATCH):")
            for users, found in ((100_000, small), (args.users, results)):
                print(
                    f"  {users:>10,} users: {found['tap'].peak_rss / 2**20:6.0f} MB /"
                    f" {found['batch'].peak_rss / 2**20:6.0f} MB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
