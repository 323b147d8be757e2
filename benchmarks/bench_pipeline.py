r"""Benchmark: sandbox -> `meltano run` -> PostgreSQL and DuckDB, against loading the same CSV.

Each configuration is timed from the moment the tap logs that the export is DONE to the end of
`meltano run`, and compared with the loading floor measured in the same run: PostgreSQL's
``COPY ... FROM STDIN`` (what psql's ``\\copy`` sends) and DuckDB's CSV reader, each into a
typed table with a primary key, the file already on disk. The target's peak RSS is sampled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import psutil
import psycopg
import requests
from harness import delete_tap_tasks, export_url, start_sandbox

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType

if TYPE_CHECKING:
    from collections.abc import Callable

PROJECT = Path(__file__).resolve().parent.parent
MELTANO = PROJECT / ".venv-meltano" / "bin" / "meltano"
BATCHES = PROJECT / "output" / "batches"
#: Meltano's log line of the tap's DONE, with Meltano's own timestamp (lines reach a pipe in
#: bursts, so the time of reading them is not the time they were written).
DONE = re.compile(r"^(\S+Z) .*Export task \d+ is DONE")
PG = "TAP_SPAAZA_USERS_TEST_POSTGRES_"
SQL_TYPES = {
    ColumnType.INTEGER: "bigint",
    ColumnType.STRING: "text",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.DATE_TIME: "timestamp",
    ColumnType.DECIMAL: "numeric",
}
#: The configuration before the fast path (per-record, the target's defaults), and the shipped
#: ones: (label, extractor, loader, settings given as environment variables).
CONFIGURATIONS: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "postgres, before (validate, INSERT)",
        "tap-spaaza-users",
        "target-postgres",
        {
            "TARGET_POSTGRES_VALIDATE_RECORDS": "true",
            "TARGET_POSTGRES_USE_COPY": "false",
            "TARGET_POSTGRES_BATCH_SIZE_ROWS": "10000",
        },
    ),
    ("postgres, shipped RECORD", "tap-spaaza-users", "target-postgres", {}),
    ("postgres, shipped BATCH", "tap-spaaza-users--batch", "target-postgres", {}),
    (
        "duckdb, before (1000003 rows)",
        "tap-spaaza-users",
        "target-duckdb",
        {"TARGET_DUCKDB_BATCH_SIZE_ROWS": "1000003"},
    ),
    ("duckdb, shipped", "tap-spaaza-users", "target-duckdb", {}),
]


@dataclass
class Result:
    """One measured load: seconds after DONE (or of the floor), the target's peak RSS."""

    seconds: float
    peak_rss: int = 0


@dataclass
class TreeRss:
    """Samples the RSS of a process's descendants whose command line matches, keeps the peak."""

    pid: int
    pattern: str
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> TreeRss:  # noqa: PYI034 - Self needs Python 3.11
        """Start sampling in a thread."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                children = root.children(recursive=True)
            except psutil.Error:
                return
            total = sum(rss_of(child, self.pattern) for child in children)
            self.peak = max(self.peak, total)
            time.sleep(0.05)


def rss_of(process: psutil.Process, pattern: str) -> int:
    """The RSS of a process whose command line contains ``pattern``; 0 for others (or gone)."""
    try:
        return process.memory_info().rss if pattern in " ".join(process.cmdline()) else 0
    except psutil.Error:
        return 0


def postgres_dsn() -> str | None:
    """The test server's DSN from ``TAP_SPAAZA_USERS_TEST_POSTGRES_*``, or None."""
    if not os.environ.get(PG + "HOST"):
        return None
    names = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    parts = [f"{key}={os.environ.get(PG + name, '')}" for key, name in names.items()]
    return " ".join([*parts, f"dbname={os.environ.get(PG + 'DATABASE', '')}"])


def table_sql(table: str) -> str:
    """CREATE TABLE of the users columns, typed, with the primary key."""
    columns = ", ".join(f"{name} {SQL_TYPES[kind]}" for name, kind in USER_COLUMNS.items())
    return f"CREATE TABLE {table} ({columns}, PRIMARY KEY (id))"


def postgres_floor(dsn: str, csv_path: Path) -> Result:
    """``COPY users FROM STDIN (FORMAT csv, HEADER)`` into a typed table, as psql's copy."""
    schema = f"floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            connection.execute(table_sql(f"{schema}.users"))
            started = time.perf_counter()
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {schema}.users FROM STDIN (FORMAT csv, HEADER)") as copy,
                csv_path.open("rb") as source,
            ):
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            return Result(time.perf_counter() - started)
        finally:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def duckdb_floor(csv_path: Path, workdir: Path) -> Result:
    """DuckDB's CSV reader into a typed table with a primary key, in a new database file."""
    path = workdir / "floor.duckdb"
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as connection:
        connection.execute(table_sql("users"))
        started = time.perf_counter()
        connection.execute(f"COPY users FROM '{csv_path}' (HEADER)")
        seconds = time.perf_counter() - started
    path.unlink(missing_ok=True)
    return Result(seconds)


def meltano_env(info: dict[str, Any], workdir: Path, dsn_env: dict[str, str]) -> dict[str, str]:
    """The environment of `meltano run`: a private system dir, the sandbox, the warehouses."""
    sys_dir = workdir / "meltano-sys"
    if not sys_dir.exists():
        sys_dir.mkdir()
        for kind in ("extractors", "loaders"):
            (sys_dir / kind).symlink_to(PROJECT / ".meltano" / kind)
    drop = ("TAP_SPAAZA_USERS_", "TARGET_", "MELTANO_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
    env.update(dsn_env)
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "TAP_SPAAZA_USERS_API_URL": info["url"],
            "TAP_SPAAZA_USERS_CHAIN_ID": str(info["chain_id"]),
            "TAP_SPAAZA_USERS_ACCESS_TOKEN_ID": info["token_id"],
            "TAP_SPAAZA_USERS_ACCESS_TOKEN_SECRET": info["token_secret"],
        }
    )
    return env


def afresh(drop: Callable[[], None], info: dict[str, Any]) -> Callable[[], None]:
    """``drop``, then delete the task the last run kept, so the next run exports afresh."""

    def cleanup() -> None:
        drop()
        delete_tap_tasks(info)

    return cleanup


def meltano_run(
    extractor: str, loader: str, env: dict[str, str], cleanup: Callable[[], None]
) -> Result:
    """`meltano run EXTRACTOR LOADER` from a fresh state; seconds after DONE, target's peak RSS."""
    cleanup()
    run_env = env
    done_at: list[float] = []
    process = subprocess.Popen(
        [str(MELTANO), "--log-format=uncolored", "run", "--no-state-update", extractor, loader],
        cwd=PROJECT,
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tail: list[str] = []
    started = time.time()
    with TreeRss(process.pid, loader) as rss:
        assert process.stderr is not None  # noqa: S101
        for line in process.stderr:
            tail = [*tail[-30:], line]
            if not done_at and (match := DONE.search(line)):
                done_at.append(
                    dt.datetime.fromisoformat(match[1].replace("Z", "+00:00")).timestamp()
                )
        code = process.wait()
    ended = time.time()
    remove_batch_files(since=started)
    if code != 0 or not done_at:
        msg = f"meltano run {extractor} {loader} failed (exit {code}):\n{''.join(tail)}"
        raise RuntimeError(msg)
    return Result(ended - done_at[0], rss.peak)


def remove_batch_files(since: float) -> None:
    """Delete the BATCH files a run left in the project's output/batches (targets keep them)."""
    for path in BATCHES.glob("*"):
        if path.is_file() and path.stat().st_mtime >= since - 1:
            path.unlink()


def measure(users: int, repeat: int, workdir: Path, *, skip_postgres: bool) -> dict[str, Result]:
    """The floors and each configuration, interleaved ``repeat`` times; their medians."""
    dsn = None if skip_postgres else postgres_dsn()
    process, info = start_sandbox(users, workdir)
    try:
        csv_path = workdir / "users.csv"
        with requests.get(export_url(info, "floor"), stream=True, timeout=60) as response:
            response.raise_for_status()
            with csv_path.open("wb") as sink:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    sink.write(chunk)
        duckdb_path = workdir / "warehouse.duckdb"
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        dsn_env = {"TARGET_DUCKDB_FILEPATH": str(duckdb_path)}
        if dsn is not None:
            dsn_env |= {
                f"TARGET_POSTGRES_{name}": os.environ.get(PG + name, "")
                for name in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")
            }
            dsn_env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = schema
        env = meltano_env(info, workdir, dsn_env)

        def drop_schema() -> None:
            if dsn is not None:
                with psycopg.connect(dsn, autocommit=True) as connection:
                    connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

        def drop_duckdb() -> None:
            duckdb_path.unlink(missing_ok=True)

        runs: dict[str, list[Result]] = {}
        for _ in range(repeat):
            if dsn is not None:
                runs.setdefault("postgres floor (COPY of the CSV)", []).append(
                    postgres_floor(dsn, csv_path)
                )
            runs.setdefault("duckdb floor (read_csv via COPY)", []).append(
                duckdb_floor(csv_path, workdir)
            )
            for label, extractor, loader, settings in CONFIGURATIONS:
                if loader == "target-postgres" and dsn is None:
                    continue
                drop = drop_schema if loader == "target-postgres" else drop_duckdb
                cleanup = afresh(drop, info)
                runs.setdefault(label, []).append(
                    meltano_run(extractor, loader, {**env, **settings}, cleanup)
                )
        drop_schema()
        return {
            label: Result(
                statistics.median(item.seconds for item in items),
                int(statistics.median(item.peak_rss for item in items)),
            )
            for label, items in runs.items()
        }
    finally:
        process.terminate()
        process.wait(timeout=60)


def report(users: int, repeat: int, results: dict[str, Result]) -> None:
    """Print each load's seconds after DONE, its ratio to its floor, and the target's RSS."""
    print(f"users: {users:,}  repeat: {repeat}  (medians; compare only within this run)")
    floors = {name.split()[0]: result for name, result in results.items() if "floor" in name}
    for name, result in results.items():
        warehouse = name.split()[0].rstrip(",")
        if "floor" in name:
            print(f"{name:<40} {result.seconds:8.2f} s")
            continue
        ratio = result.seconds / floors[warehouse].seconds
        print(
            f"{name:<40} {result.seconds:8.2f} s after DONE  ratio to floor {ratio:6.1f}"
            f"  target peak RSS {result.peak_rss / 2**20:6.0f} MB"
        )
    before = results.get("postgres, before (validate, INSERT)")
    if before is not None:
        for name in ("postgres, shipped RECORD", "postgres, shipped BATCH"):
            print(f"speed-up {name} vs before: {before.seconds / results[name].seconds:.1f}x")
    before, shipped = results["duckdb, before (1000003 rows)"], results["duckdb, shipped"]
    print(f"speed-up duckdb, shipped vs before: {before.seconds / shipped.seconds:.1f}x")


def main() -> int:
    """Parse the options, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300_000, help="sandbox population")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (medians)")
    parser.add_argument(
        "--skip-postgres", action="store_true", help="DuckDB only (no PostgreSQL configured)"
    )
    args = parser.parse_args()
    if not MELTANO.exists():
        print("meltano is not installed here: run `make setup` first", file=sys.stderr)
        return 2
    if not args.skip_postgres and postgres_dsn() is None:
        print(
            f"PostgreSQL is not configured ({PG}*): `source scripts/start-postgres.sh` first,"
            " or --skip-postgres",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        results = measure(args.users, args.repeat, Path(tmp), skip_postgres=args.skip_postgres)
        report(args.users, args.repeat, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
