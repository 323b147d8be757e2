"""DuckDB loaders alone: the same tap output loaded by each, against DuckDB's CSV reader.

One sandbox; the tap runs twice (RECORD messages to a file, then BATCH files), and the export
is downloaded as CSV. Then, in turn, each loader reads the saved messages from a file into a
new database: the shipped wrapper (``loaders/target-duckdb-final-state``: its bulk path, for
RECORD and for BATCH), target-duckdb's own per-record path (``flush_all_streams``, which
changes no row), and any other target-duckdb executable given with ``--loader NAME=PATH``
(e.g. the Hub's MeltanoLabs variant installed in a virtual environment of its own). The floor
is ``COPY users FROM 'the.csv'`` into a typed table with a primary key. Seconds, CPU seconds
and peak RSS of each loader process; the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from bench_pipeline import duckdb_floor
from harness import PeakRss, delete_tap_tasks, export_url, start_sandbox

PROJECT = Path(__file__).resolve().parent.parent
LOADER_PYTHON = PROJECT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
WRAPPER = [str(LOADER_PYTHON), "-c", "from target_duckdb_final_state import main; main()"]
TARGET = 10.0


def tap_output(info: dict[str, object], workdir: Path, name: str, batch: bool) -> Path:  # noqa: FBT001
    """Run the tap (a fresh export) and save its messages."""
    config: dict[str, object] = {
        "api_url": info["url"], "chain_id": info["chain_id"],
        "access_token_id": info["token_id"], "access_token_secret": info["token_secret"],
        "poll_interval_seconds": 0.1, "poll_max_interval_seconds": 0.5,
    }  # fmt: skip
    if batch:
        (workdir / "batches").mkdir(exist_ok=True)
        storage = {"root": (workdir / "batches").as_uri(), "prefix": "users-"}
        encoding = {"format": "jsonl", "compression": "gzip"}
        config["batch_config"] = {"encoding": encoding, "storage": storage, "batch_size": 50000}
    (workdir / f"{name}.json").write_text(json.dumps(config), encoding="utf-8")
    output = workdir / f"{name}.jsonl"
    with output.open("wb") as sink:
        command = [
            sys.executable,
            "-m",
            "tap_spaaza_users",
            "--config",
            str(workdir / f"{name}.json"),
        ]
        subprocess.run(command, stdout=sink, stderr=subprocess.DEVNULL, check=True)
    delete_tap_tasks(info)
    return output


def load(
    command: list[str], messages: Path, workdir: Path, **settings: object
) -> tuple[float, float, int]:
    """Run one loader over ``messages`` into a new database: (seconds, CPU seconds, peak RSS)."""
    database = workdir / "load.duckdb"
    database.unlink(missing_ok=True)
    config = workdir / "load-config.json"
    settings = {"filepath": str(database), "default_target_schema": "spaaza", **settings}
    config.write_text(json.dumps(settings), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "loaders" / "target-duckdb-final-state")}
    started = time.perf_counter()
    with messages.open("rb") as source:
        process = subprocess.Popen(
            [*command, "--config", str(config)],
            stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        watched = psutil.Process(process.pid)
        cpu = 0.0
        with PeakRss(process.pid) as rss:
            while process.poll() is None:
                try:
                    times = watched.cpu_times()
                    cpu = times.user + times.system
                except psutil.Error:
                    break
                time.sleep(0.05)
    if process.returncode != 0:
        msg = f"{command} failed (exit {process.returncode})"
        raise RuntimeError(msg)
    database.unlink(missing_ok=True)
    return time.perf_counter() - started, cpu, rss.peak


def main() -> int:
    """Measure and print each loader against the floor."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--loader", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    load_start = " ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as tmp:
        workdir = Path(tmp)
        process, info = start_sandbox(args.users, workdir)
        try:
            csv_path = workdir / "users.csv"
            with requests.get(export_url(info, "floor"), stream=True, timeout=600) as response:
                csv_path.write_bytes(response.content)
            records = tap_output(info, workdir, "records", batch=False)
            batches = tap_output(info, workdir, "batches", batch=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
        floor = duckdb_floor(csv_path, workdir).seconds
        runs = [
            ("shipped wrapper, RECORD", WRAPPER, records, {}),
            ("shipped wrapper, BATCH", WRAPPER, batches, {}),
            ("target-duckdb's own path, RECORD", WRAPPER, records, {"flush_all_streams": True}),
        ]
        runs += [
            (f"{name}, RECORD", [path], records, {})
            for name, path in (item.split("=", 1) for item in args.loader)
        ]
        print(f"users: {args.users:,}  loaders alone, messages read from a file")
        print(f"duckdb floor (read_csv via COPY) {floor:8.2f} s")
        worst = 0.0
        for label, command, messages, settings in runs:
            seconds, cpu, peak = load(command, messages, workdir, **settings)
            ratio = seconds / floor
            if label.startswith("shipped"):
                worst = max(worst, ratio)
            print(
                f"{label:<34} {seconds:8.2f} s  CPU {cpu:6.1f} s  ratio to floor {ratio:6.1f}"
                f"  peak RSS {peak / 2**20:6.0f} MB"
            )
    load_end = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end")
    print(f"shipped loader, worst ratio to floor: {worst:.1f} (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
