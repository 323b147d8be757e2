"""Fixtures that drive the real `meltano` CLI against a sandbox started by the test."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psycopg
import pytest
from support.requirements import require

from tap_spaaza_users.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MELTANO_TIMEOUT_SECONDS = 300
#: The installed target-postgres loader's virtual environment (the wrapper and the plain target).
TARGET_POSTGRES_BIN = PROJECT_ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
#: The test PostgreSQL server's connection settings, from the environment.
POSTGRES_PREFIX = "TAP_SPAAZA_USERS_TEST_POSTGRES_"


def meltano_executable() -> Path:
    """Return the meltano command, from the environment or the project's own install."""
    configured = os.environ.get("TAP_SPAAZA_USERS_TEST_MELTANO")
    return Path(configured) if configured else PROJECT_ROOT / ".venv-meltano" / "bin" / "meltano"


def settings_env(prefix: str, config: dict[str, Any]) -> dict[str, str]:
    """Turn a plugin config into the `<PLUGIN>_<SETTING>` variables Meltano reads."""
    env = {}
    for key, value in config.items():
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"{prefix}_{key.upper()}"] = text
    return env


@dataclass
class Meltano:
    """The project's `meltano` CLI with an isolated system database and outputs."""

    executable: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    #: The Meltano project the commands run in (a test may use a copy of its own).
    project: Path = PROJECT_ROOT

    def __call__(
        self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `meltano ARGS` in the project; on failure with check, fail with its output."""
        result = subprocess.run(
            [str(self.executable), *args],
            cwd=self.project,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT_SECONDS,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"meltano {' '.join(args)} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-5000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
            )
        return result

    def state(self, state_id: str) -> dict[str, Any]:
        """Return the state Meltano's system database holds for ``state_id``."""
        result = self("state", "get", state_id)
        return cast("dict[str, Any]", json.loads(result.stdout))

    def use_sandbox(self, sandbox: Sandbox, **overrides: Any) -> None:
        """Point the extractor at ``sandbox`` through `TAP_SPAAZA_USERS_*` variables.

        The sandbox's fast poll intervals go along: fractions are `kind: string` settings,
        which Meltano passes from the environment as they are (see meltano.yml).
        """
        config = sandbox.tap_config(**overrides)
        self.env.update(settings_env("TAP_SPAAZA_USERS", config))


@pytest.fixture(scope="session")
def meltano_installed() -> Path:
    """Return the meltano executable, with the project's plugins installed once.

    Under pytest-xdist every worker has this session fixture: a lock on the project's
    meltano.yml lets one worker install while the others wait, then find the plugins there.
    """
    executable = meltano_executable()
    require(executable.exists(), f"meltano not found at {executable}", "run `make test`")
    plugins = PROJECT_ROOT / ".meltano"
    needed = [
        plugins / "extractors" / "tap-spaaza-users" / "venv",
        plugins / "loaders" / "target-jsonl" / "venv",
        plugins / "loaders" / "target-duckdb" / "venv",
        plugins / "loaders" / "target-postgres" / "venv",
    ]
    with (PROJECT_ROOT / "meltano.yml").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(path.exists() for path in needed):
            subprocess.run(
                [str(executable), "install"],
                cwd=PROJECT_ROOT,
                check=True,
                timeout=MELTANO_TIMEOUT_SECONDS,
                env=clean_env(),
            )
    return executable


def clean_env() -> dict[str, str]:
    """Return the environment without any plugin settings a developer may have exported."""
    drop = ("TAP_SPAAZA_USERS_", "TARGET_", "MELTANO_", "SPAAZA_SANDBOX_")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(drop) or key.startswith("TAP_SPAAZA_USERS_TEST_")
    }
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["MELTANO_ENVIRONMENT"] = "dev"
    return env


def private_sys_dir(tmp_path: Path) -> Path:
    """Return a Meltano system dir of the test's own that shares the installed plugins.

    Its system database (state), run files and logs are the test's alone, so tests never
    clobber the demo's state or race another run; the plugins' virtual environments are
    links to the project's, installed once.
    """
    sys_dir = tmp_path / "meltano-sys"
    sys_dir.mkdir()
    for plugin_type in ("extractors", "loaders"):
        (sys_dir / plugin_type).symlink_to(PROJECT_ROOT / ".meltano" / plugin_type)
    return sys_dir


@pytest.fixture
def meltano(meltano_installed: Path, tmp_path: Path) -> Meltano:
    """Return a meltano runner whose state, run files and outputs live in the test's temp dir."""
    env = clean_env()
    env["MELTANO_SYS_DIR_ROOT"] = str(private_sys_dir(tmp_path))
    env["TARGET_JSONL_DESTINATION_PATH"] = str(tmp_path / "jsonl")
    env["TARGET_DUCKDB_FILEPATH"] = str(tmp_path / "warehouse.duckdb")
    return Meltano(executable=meltano_installed, workdir=tmp_path, env=env)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Start a small, fast sandbox (a few hundred users, instant tasks) for one test."""
    with Sandbox(
        users=300,
        seed=7,
        index_lag_seconds=0,
        task_base_seconds=0.0,
        task_seconds_per_1k_users=0.0,
    ) as sb:
        yield sb


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Return the records of a target-jsonl output file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def tricky_user(sandbox: Sandbox) -> tuple[int, dict[str, str]]:
    """Give one sandbox user values that break naive CSV or SQL handling; return id and values."""
    user_id = int(sandbox.users()[0]["id"])
    values = {
        "first_name": 'Zoë "Zee", the first',
        "last_name": "O'Brien-Łukasiewicz\nsecond line",
        "address_streetname": "  Straße 東京, 1  ",
    }
    sandbox.update_user(user_id, **values)
    return user_id, values


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """The test server's DSN, target settings, and the schemas to drop afterwards."""
    require(
        bool(os.environ.get(POSTGRES_PREFIX + "HOST")),
        f"PostgreSQL is not configured ({POSTGRES_PREFIX}*)",
        "run `make test` as root, or `source scripts/start-postgres.sh` (as root) first",
    )
    require_postgres_loader()
    settings: dict[str, Any] = {
        name: os.environ.get(POSTGRES_PREFIX + name.upper(), "")
        for name in ("host", "port", "user", "password", "database")
    }
    settings["port"] = int(settings["port"])
    dsn = " ".join(f"{key if key != 'database' else 'dbname'}={settings[key]}" for key in settings)
    schemas: list[str] = []
    yield dsn, settings, schemas
    with psycopg.connect(dsn, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def require_postgres_loader() -> None:
    """The installed target-postgres loader (the wrapper and the plain target), or skip/fail."""
    require(
        (TARGET_POSTGRES_BIN / "target-postgres-fast").exists(),
        "the target-postgres loader is not installed",
        "run `make setup`",
    )


def run_target_script(
    script: str, which: str, settings: dict[str, Any], lines: str, tmp: Path
) -> str:
    """Run ``script`` (the plain target or the wrapper, by ``which``) over Singer ``lines``.

    Returns its standard error, where the scripts print what they counted; fails the test
    with the end of that error when the target fails.
    """
    config = tmp / f"{which}-{uuid.uuid4().hex[:6]}.json"
    config.write_text(json.dumps(settings), encoding="utf-8")
    result = subprocess.run(
        [str(TARGET_POSTGRES_BIN / "python"), "-c", script, which, "--config", str(config)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr
