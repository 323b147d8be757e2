"""The docs' Meltano and target commands run as written, after the activation line, on a sandbox."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from typing import TYPE_CHECKING

import duckdb
from support.doc_blocks import marked_text

from .conftest import MELTANO_TIMEOUT_SECONDS, PROJECT_ROOT, read_jsonl
from .test_meltano_sandbox_extractor import (  # noqa: F401 - fixtures
    demo_sandbox,
    project_meltano,
)
from .test_meltano_warehouses import postgres  # noqa: F401 - the PostgreSQL fixture

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano
    from .test_meltano_warehouses import Postgres

#: The PostgreSQL settings the docs' target-postgres block sets, each a TARGET_POSTGRES_* variable.
POSTGRES_SETTINGS = ("host", "port", "user", "password", "database")


def run_block(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a block with bash after the README's activation line."""
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{marked_text('activate')}{block}"],
        cwd=cwd,
        env=without_project_tools(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=MELTANO_TIMEOUT_SECONDS,
    )


def without_project_tools(env: dict[str, str]) -> dict[str, str]:
    """``env`` with neither of the project's environments on PATH (activation adds them)."""
    venvs = {str(PROJECT_ROOT / ".venv" / "bin"), str(PROJECT_ROOT / ".venv-meltano" / "bin")}
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p not in venvs]
    return {**{k: v for k, v in env.items() if k != "VIRTUAL_ENV"}, "PATH": os.pathsep.join(path)}


def test_readme_meltano_commands_run_as_written(
    project_meltano: Meltano,  # noqa: F811 - the imported fixture
    demo_sandbox: Sandbox,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    activate = marked_text("activate")
    lines = [line for line in marked_text("meltano").splitlines() if line.strip()]
    env = without_project_tools(project_meltano.env)
    outputs = []
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{activate}{line}"],
            cwd=project_meltano.project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=MELTANO_TIMEOUT_SECONDS,
        )
        assert done.returncode == 0, f"README command failed: {line}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)

    by_line = dict(zip(lines, outputs, strict=True))
    (get,) = [out for line, out in by_line.items() if " state get " in line]
    bookmark = json.loads(get)["singer_state"]["bookmarks"]["users"]
    assert bookmark["replication_key_value"]
    (listed,) = [out for line, out in by_line.items() if line.startswith("meltano state list")]
    assert "dev:tap-spaaza-users--sandbox-to-target-duckdb" in listed
    users = {int(u["id"]) for u in demo_sandbox.users()}
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        loaded = {row[0] for row in connection.execute("SELECT id FROM spaaza.users").fetchall()}
    assert loaded == users
    after = project_meltano("state", "get", "dev:tap-spaaza-users--sandbox-to-target-duckdb")
    assert "replication_key_value" not in after.stdout, "the README's last line clears the state"


def test_readme_postgres_block_configures_target_postgres_as_written(
    project_meltano: Meltano,  # noqa: F811 - the imported fixture
    demo_sandbox: Sandbox,  # noqa: F811 - the imported fixture
    postgres: Postgres,  # noqa: F811 - the imported fixture
) -> None:
    block = marked_text("postgres")
    names = [name.lower() for name in re.findall(r"TARGET_POSTGRES_(\w+)=", block)]
    assert sorted(names) == sorted(POSTGRES_SETTINGS), "the block sets every connection setting"
    server = {n: project_meltano.env.pop(f"TARGET_POSTGRES_{n.upper()}") for n in names}
    as_written = re.sub(
        r"TARGET_POSTGRES_(\w+)=\S+",
        lambda m: f"TARGET_POSTGRES_{m[1]}={shlex.quote(server[m[1].lower()])}",
        block,
    )  # the test server's values in place of the examples, nothing else changed

    done = run_block(as_written, project_meltano.project, project_meltano.env)

    assert done.returncode == 0, f"the block failed:\n{done.stderr[-3000:]}"
    loaded = {row[0] for row in postgres.query("SELECT id FROM {table}")}
    assert loaded == {int(u["id"]) for u in demo_sandbox.users()}


def test_pipe_block_feeds_the_installed_target_jsonl(
    demo_sandbox: Sandbox,  # noqa: F811 - the imported fixture
    meltano: Meltano,
    tmp_path: Path,
) -> None:
    (tmp_path / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (tmp_path / ".meltano").symlink_to(PROJECT_ROOT / ".meltano")
    cli = marked_text("cli")
    write_config = cli[: cli.index("\nEOF\n") + len("\nEOF\n")]  # the config file it writes
    assert write_config.startswith("cat > config.json")
    address = demo_sandbox.url.removeprefix("http://")
    block = (write_config + marked_text("pipe")).replace("127.0.0.1:8765", address)

    done = run_block(block, tmp_path, meltano.env)

    assert done.returncode == 0, f"the block failed:\n{done.stderr[-3000:]}"
    (written,) = tmp_path.glob("users*.jsonl")
    assert {r["id"] for r in read_jsonl(written)} == {int(u["id"]) for u in demo_sandbox.users()}
