"""`make demo`'s script on a small population, and its row-count check failing loudly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import duckdb

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_syncs_twice_and_checks_the_warehouse_against_the_sandbox(
    meltano: Meltano, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **meltano.env,
        "MELTANO": str(meltano.executable),
        "VENV_BIN": str(os.path.dirname(sys.executable)),  # noqa: PTH120
        "SPAAZA_SANDBOX_PORT": str(port),
        "DEMO_USERS": "400",
        "DEMO_NEW_USERS": "25",
        "DEMO_DIR": str(tmp_path / "demo"),
        "DEMO_WAREHOUSE": str(tmp_path / "demo-warehouse.duckdb"),
    }

    result = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "✓ Run 1 (full): 400 rows loaded; warehouse = sandbox = 400 users" in output
    assert "warehouse = sandbox = 425 users" in output
    assert "The incremental run loaded only the 25 new users" in output
    for heading in ("Users loaded per run", "By country", "By loyalty tier", "Opt-in rates"):
        assert heading in output
    assert "Sandbox stopped." in output
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the sandbox is still running"


def test_demo_check_fails_loudly_when_the_loader_lost_a_row(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    warehouse = tmp_path / "short.duckdb"
    ids = [int(user["id"]) for user in sandbox.users()]
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("CREATE SCHEMA spaaza")
        connection.execute(
            "CREATE TABLE spaaza.users "
            "(id BIGINT, created_date TIMESTAMP, _sdc_batched_at TIMESTAMP)"
        )
        connection.executemany(
            "INSERT INTO spaaza.users VALUES (?, TIMESTAMP '2026-01-01 00:00:00', now())",
            [(user_id,) for user_id in ids[1:]],
        )
    state = tmp_path / "state.json"
    bookmark = {"replication_key": "created_date", "replication_key_value": "2026-01-01T00:00:00"}
    state.write_text(json.dumps({"singer_state": {"bookmarks": {"users": bookmark}}}))

    command = [sys.executable, "scripts/demo_summary.py", "--db", str(warehouse)]
    command += ["--runs", str(tmp_path / "runs.json"), "check", "--sandbox", sandbox.url]
    command += ["--state", str(state), "--label", "Run 1", "--started-at", "2026-01-01T00:00:00"]
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "DEMO CHECK FAILED" in result.stderr
    assert f"holds {len(ids) - 1} rows" in result.stderr
    assert f"sandbox has {len(ids)} users" in result.stderr
