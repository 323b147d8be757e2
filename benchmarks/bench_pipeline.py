r"""Benchmark: sandbox -> `meltano run` -> PostgreSQL and DuckDB, against loading the same CSV.

Each configuration is timed from the moment the tap logs that the export is DONE to the end of
`meltano run`, and compared with the loading floor measured in the same run: PostgreSQL's
``COPY ... FROM STDIN`` (what psql's ``\\copy`` sends) and DuckDB's CSV reader, each into a
typed table with a primary key, the file already on disk. The target's peak RSS and the CPU
seconds of the tap, Meltano (which relays every line) and the target are sampled.

"before" is how target-postgres was configured before the fast path: the plain
meltanolabs-target-postgres (not the project's wrapper, ``loaders/target-postgres-fast``),
record validation, INSERT, 10,000-row batches; for DuckDB, target-duckdb's own per-record path
(not the wrapper's bulk path, ``loaders/target-duckdb-final-state``). Both run from a copy of
``meltano.yml`` whose loader executables are the plain targets (same installed plugins).
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
#: meltano.yml's loader executables (the project's wrappers) and the plain targets', each in
#: the same virtual environment.
PLAIN_EXECUTABLES = {
    "executable: target-postgres-fast": "executable: target-postgres",
    "executable: target-duckdb-final-state": "executable: target-duckdb",
}


@dataclass(frozen=True)
class Configuration:
    """One measured load: its label, plugins, settings (environment variables), and role."""

    label: str
    extractor: str
    loader: str
    settings: dict[str, str] = field(default_factory=dict)
    #: Run the plain meltanolabs-target-postgres instead of the project's wrapper.
    plain: bool = False
    #: "before" (what the others are compared with), "default" (what `meltano run
    #: tap-spaaza-users LOADER` does), "fastest" (the recommended fastest), or "".
    role: str = ""

    @property
    def warehouse(self) -> str:
        """The warehouse: postgres or duckdb."""
        return self.label.split(",")[0]


BEFORE = "postgres, before (plain target, validation, INSERT, 10,000 rows)"
CONFIGURATIONS: list[Configuration] = [
    Configuration(
        BEFORE,
        "tap-spaaza-users",
        "target-postgres",
        {
            "TARGET_POSTGRES_VALIDATE_RECORDS": "true",
            "TARGET_POSTGRES_USE_COPY": "false",
            "TARGET_POSTGRES_BATCH_SIZE_ROWS": "10000",
        },
        plain=True,
        role="before",
    ),
    Configuration(
        "postgres, plain target with the shipped settings",
        "tap-spaaza-users",
        "target-postgres",
        plain=True,
    ),
    Configuration(
        "postgres, plain target, BATCH (tap-spaaza-users--batch)",
        "tap-spaaza-users--batch",
        "target-postgres",
        plain=True,
    ),
    Configuration(
        "postgres, plain target, BATCH without gzip",
        "tap-spaaza-users--batch",
        "target-postgres",
        {"TAP_SPAAZA_USERS__BATCH_BATCH_CONFIG_ENCODING_COMPRESSION": "none"},
        plain=True,
    ),
    Configuration(
        "postgres, plain target, BATCH without gzip, files of 25,000 users",
        "tap-spaaza-users--batch",
        "target-postgres",
        {
            "TAP_SPAAZA_USERS__BATCH_BATCH_CONFIG_ENCODING_COMPRESSION": "none",
            "TAP_SPAAZA_USERS__BATCH_BATCH_CONFIG_BATCH_SIZE": "25000",
        },
        plain=True,
    ),
    Configuration(
        "postgres, plain target, BATCH without gzip, without record metadata",
        "tap-spaaza-users--batch",
        "target-postgres",
        {
            "TAP_SPAAZA_USERS__BATCH_BATCH_CONFIG_ENCODING_COMPRESSION": "none",
            "TARGET_POSTGRES_ADD_RECORD_METADATA": "false",
            "TARGET_POSTGRES_ACTIVATE_VERSION": "false",
        },
        plain=True,
    ),
    Configuration(
        "postgres, shipped RECORD (default)", "tap-spaaza-users", "target-postgres", role="default"
    ),
    Configuration(
        "postgres, shipped BATCH (tap-spaaza-users--batch)",
        "tap-spaaza-users--batch",
        "target-postgres",
        role="fastest",
    ),
    Configuration(
        "duckdb, before (target-duckdb's own per-record path, as the Hub's)",
        "tap-spaaza-users",
        "target-duckdb",
        plain=True,
        role="before",
    ),
    Configuration(
        "duckdb, shipped RECORD (default)", "tap-spaaza-users", "target-duckdb", role="default"
    ),
    Configuration(
        "duckdb, shipped BATCH (tap-spaaza-users--batch)",
        "tap-spaaza-users--batch",
        "target-duckdb",
        role="fastest",
    ),
]


@dataclass
class Result:
    """One measured load: seconds after DONE (or of the floor), the target's peak RSS, CPU."""

    seconds: float
    peak_rss: int = 0
    #: CPU seconds (user + system) of the tap (and its gzip), Meltano, and the target.
    cpu: dict[str, float] = field(default_factory=dict)


def role_of(cmdline: str) -> str:
    """tap, target, meltano or server: which part of `meltano run` a process is."""
    if cmdline.startswith("postgres:"):
        return "server"
    program = cmdline.split(" ", 2)[:2]
    if any("/loaders/" in part for part in program):
        return "target"
    if any("/extractors/" in part for part in program) or "gzip" in program[0]:
        return "tap"
    return "meltano"


@dataclass
class TreeRss:
    """Samples a process tree: peak RSS of the matching processes, CPU seconds of each.

    The peak is of the processes whose command line contains ``pattern``; a process's CPU
    seconds are its last sample before it ended. With ``database``, the PostgreSQL server's
    backends connected to it (their process title names it) are sampled too: the server's
    share of the load (COPY into the temporary table, merge), missing only each backend's
    last 50 ms.
    """

    pid: int
    pattern: str
    database: str | None = None
    peak: int = 0
    _cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def cpu(self) -> dict[str, float]:
        """CPU seconds per part (tap, meltano, target, and server with a database)."""
        parts: dict[str, float] = {"tap": 0.0, "meltano": 0.0, "target": 0.0}
        if self.database is not None:
            parts["server"] = 0.0
        for part, seconds in self._cpu.values():
            parts[part] += seconds
        return parts

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
            for process in [root, *children, *self._backends()]:
                self._note_cpu(process)
            time.sleep(0.05)

    def _backends(self) -> list[psutil.Process]:
        """The server's backends connected to ``database`` (none without one)."""
        if self.database is None:
            return []
        title = f" {self.database} "
        backends = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if cmdline and cmdline[0].startswith("postgres:") and title in " ".join(cmdline):
                backends.append(process)
        return backends

    def _note_cpu(self, process: psutil.Process) -> None:
        try:
            with process.oneshot():
                cmdline, times = " ".join(process.cmdline()), process.cpu_times()
        except psutil.Error:
            return
        if cmdline:
            self._cpu[process.pid] = (role_of(cmdline), times.user + times.system)


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
    """``COPY users FROM STDIN (FORMAT csv, HEADER)`` into a typed table, as psql's copy.

    The server backend's CPU seconds during the COPY are counted (as ``server``).
    """
    schema = f"floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            connection.execute(table_sql(f"{schema}.users"))
            backend = psutil.Process(connection.info.backend_pid)
            cpu_before = backend.cpu_times()
            started = time.perf_counter()
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {schema}.users FROM STDIN (FORMAT csv, HEADER)") as copy,
                csv_path.open("rb") as source,
            ):
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            seconds = time.perf_counter() - started
            cpu_after = backend.cpu_times()
            server = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
            return Result(seconds, cpu={"server": server})
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


def plain_project(workdir: Path) -> Path:
    """A copy of the project's meltano.yml that runs the plain targets (same plugins).

    Raises:
        RuntimeError: When meltano.yml no longer names the wrapper as the executable.
    """
    text = (PROJECT / "meltano.yml").read_text(encoding="utf-8")
    for wrapper, plain in PLAIN_EXECUTABLES.items():
        if text.count(wrapper) != 1:
            msg = f"meltano.yml has no single {wrapper!r} to replace"
            raise RuntimeError(msg)
        text = text.replace(wrapper, plain)
    project = workdir / "plain-project"
    project.mkdir(exist_ok=True)
    (project / "meltano.yml").write_text(text, encoding="utf-8")
    return project


def afresh(drop: Callable[[], None], info: dict[str, Any]) -> Callable[[], None]:
    """``drop``, then delete the task the last run kept, so the next run exports afresh."""

    def cleanup() -> None:
        drop()
        delete_tap_tasks(info)

    return cleanup


def meltano_run(
    extractor: str,
    loader: str,
    env: dict[str, str],
    cleanup: Callable[[], None],
    project: Path = PROJECT,
) -> Result:
    """`meltano run EXTRACTOR LOADER` from a fresh state; seconds after DONE, target's peak RSS.

    Into PostgreSQL, the CPU seconds of the server's backends on its database are counted.
    """
    cleanup()
    run_env = env
    done_at: list[float] = []
    process = subprocess.Popen(
        # --no-install: `make setup` installed the plugins; a copy of meltano.yml (the plain
        # project) has no pyproject.toml, and an install from it would empty the tap's venv.
        [
            str(MELTANO),
            "--log-format=uncolored",
            "run",
            "--no-install",
            "--no-state-update",
            extractor,
            loader,
        ],
        cwd=project,
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tail: list[str] = []
    started = time.time()
    database = env.get("TARGET_POSTGRES_DATABASE") if loader == "target-postgres" else None
    with TreeRss(process.pid, loader, database) as rss:
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
    return Result(ended - done_at[0], rss.peak, rss.cpu)


def remove_batch_files(since: float) -> None:
    """Delete the BATCH files a run left in the project's output/batches (targets keep them)."""
    for path in BATCHES.glob("*"):
        if path.is_file() and path.stat().st_mtime >= since - 1:
            path.unlink()


def measure(
    users: int, repeat: int, workdir: Path, *, skip_postgres: bool, skip: tuple[str, ...] = ()
) -> dict[str, Result]:
    """The floors and each configuration, interleaved ``repeat`` times; their medians.

    Configurations whose label starts with one of ``skip`` are left out.
    """
    dsn = None if skip_postgres else postgres_dsn()
    plain = plain_project(workdir)
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
            for config in CONFIGURATIONS:
                if (config.warehouse == "postgres" and dsn is None) or config.label.startswith(
                    skip
                ):
                    continue
                drop = drop_schema if config.warehouse == "postgres" else drop_duckdb
                cleanup = afresh(drop, info)
                runs.setdefault(config.label, []).append(
                    meltano_run(
                        config.extractor,
                        config.loader,
                        {**env, **config.settings},
                        cleanup,
                        plain if config.plain else PROJECT,
                    )
                )
        drop_schema()
        return {label: median_result(items) for label, items in runs.items()}
    finally:
        process.terminate()
        process.wait(timeout=60)


def median_result(items: list[Result]) -> Result:
    """The medians of a configuration's runs (seconds, peak RSS, each part's CPU)."""
    return Result(
        statistics.median(item.seconds for item in items),
        int(statistics.median(item.peak_rss for item in items)),
        {part: statistics.median(item.cpu[part] for item in items) for part in items[0].cpu},
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def report(users: int, repeat: int, results: dict[str, Result], load: tuple[str, str]) -> None:
    """Print each load's seconds after DONE, its ratio to its floor, and the target's RSS.

    Then each configuration's speed-up against its warehouse's "before", and the CPU seconds
    of the tap, Meltano and the target.
    """
    print(f"users: {users:,}  repeat: {repeat}  (medians; compare only within this run)")
    print(f"load average (1, 5, 15 min): {load[0]} at the start, {load[1]} at the end")
    width = max(len(name) for name in results) + 1
    floors = {name.split()[0]: result for name, result in results.items() if "floor" in name}
    for name, result in results.items():
        warehouse = name.split()[0].rstrip(",")
        if "floor" in name:
            server = result.cpu.get("server")
            floor_cpu = f"  server CPU {server:.1f} s" if server is not None else ""
            print(f"{name:<{width}} {result.seconds:8.2f} s{floor_cpu}")
            continue
        ratio = result.seconds / floors[warehouse].seconds
        print(
            f"{name:<{width}} {result.seconds:8.2f} s after DONE  ratio to floor {ratio:6.1f}"
            f"  target peak RSS {result.peak_rss / 2**20:6.0f} MB"
        )
    configs = [config for config in CONFIGURATIONS if config.label in results]
    befores = {config.warehouse: config for config in configs if config.role == "before"}
    for config in configs:
        before = befores.get(config.warehouse)
        if before is None or config is before:
            continue
        name = config.label
        speed_up = results[before.label].seconds / results[config.label].seconds
        print(f"speed-up {name} vs before: {speed_up:.1f}x")
    for config in configs:
        cpu = results[config.label].cpu
        parts = ", ".join(f"{part} {seconds:.1f} s" for part, seconds in cpu.items())
        print(f"CPU {config.label}: {parts}")


def main() -> int:
    """Parse the options, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300_000, help="sandbox population")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (medians)")
    parser.add_argument(
        "--skip-postgres", action="store_true", help="DuckDB only (no PostgreSQL configured)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="LABEL",
        help='leave out the configurations whose label starts with this (e.g. "duckdb, before")',
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
        start = load_average()
        results = measure(
            args.users,
            args.repeat,
            Path(tmp),
            skip_postgres=args.skip_postgres,
            skip=tuple(args.skip),
        )
        report(args.users, args.repeat, results, (start, load_average()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
