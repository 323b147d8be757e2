"""The README's Meltano commands run as written, after its activation line, against the sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import TYPE_CHECKING

import duckdb

from .conftest import MELTANO_TIMEOUT_SECONDS, PROJECT_ROOT
from .test_meltano_sandbox_extractor import (  # noqa: F401 - fixtures
    demo_sandbox,
    project_meltano,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano

README = PROJECT_ROOT / "README.md"


def readme_block(marker: str) -> str:
    """The fenced block that follows ``<!-- tested: marker -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    (block,) = re.findall(rf"<!-- tested: {marker} -->\n```\w*\n(.*?)```", text, flags=re.DOTALL)
    return str(block)


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
    activate = readme_block("activate")
    lines = [line for line in readme_block("meltano").splitlines() if line.strip()]
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
