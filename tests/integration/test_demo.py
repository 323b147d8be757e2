"""`make demo`'s script on a small population, its row-count check failing loudly, and a busy port.

The demo changes nothing until it knows it can run, and then only what is its own: the
warehouse and the state of Meltano's `demo` environment, reset together.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import duckdb
from support.ports import free_port

from tap_spaaza_users.sandbox import Sandbox

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Meltano

#: A bookmark of the dev environment's sandbox pipeline, which the demo must leave alone.
DEV_STATE_ID = "dev:tap-spaaza-users--sandbox-to-target-duckdb"
DEV_STATE = {"singer_state": {"bookmarks": {"users": {"replication_key_value": "2020-01-01"}}}}


def demo_env(meltano: Meltano, tmp_path: Path, port: int) -> dict[str, str]:
    """The demo's environment: a small population, its files and Meltano's state in tmp_path."""
    return {
        **meltano.env,
        "MELTANO": str(meltano.executable),
        "VENV_BIN": str(os.path.dirname(sys.executable)),  # noqa: PTH120
        "SPAAZA_SANDBOX_PORT": str(port),
        "DEMO_USERS": "400",
        "DEMO_NEW_USERS": "25",
        "DEMO_DIR": str(tmp_path / "demo"),
        "DEMO_WAREHOUSE": str(tmp_path / "demo-warehouse.duckdb"),
    }


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run scripts/demo.sh with its output to pipes, as `make demo | tee` would."""
    return subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_syncs_twice_and_checks_the_warehouse_against_the_sandbox(
    meltano: Meltano, tmp_path: Path
) -> None:
    port = free_port()
    meltano("state", "set", "--force", DEV_STATE_ID, json.dumps(DEV_STATE))

    result = run_demo(demo_env(meltano, tmp_path, port))

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "✓ Run 1 (full): 400 rows loaded; warehouse = sandbox = 400 users" in output
    assert "warehouse = sandbox = 425 users" in output
    assert "The incremental run loaded only the 25 new users" in output
    for heading in ("Users loaded per run", "By country", "By loyalty tier", "Opt-in rates"):
        assert heading in output
    assert "Sandbox stopped." in output
    assert "\x1b[" not in output, "ANSI colours written into a pipe"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the sandbox is still running"
    assert meltano.state("demo:tap-spaaza-users--sandbox-to-target-duckdb")["singer_state"]
    assert meltano.state(DEV_STATE_ID) == DEV_STATE, "the demo touched the dev state"
    (query,) = [line.strip() for line in result.stdout.splitlines() if "duckdb.connect(" in line]
    queried = subprocess.run(
        shlex.split(query), cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert queried.returncode == 0, queried.stderr
    assert "country_code" in queried.stdout


def test_demo_changes_nothing_and_says_why_when_another_sandbox_holds_its_port(
    meltano: Meltano, tmp_path: Path
) -> None:
    with Sandbox(users=10) as other:
        port = int(other.url.rsplit(":", 1)[1])
        env = demo_env(meltano, tmp_path, port)
        warehouse = tmp_path / "demo-warehouse.duckdb"
        with duckdb.connect(str(warehouse)) as connection:
            connection.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        before = warehouse.read_bytes()
        demo_state = {"singer_state": {"bookmarks": {"users": {"replication_key_value": "x"}}}}
        demo_id = "demo:tap-spaaza-users--sandbox-to-target-duckdb"
        meltano("state", "set", "--force", demo_id, json.dumps(demo_state))
        (tmp_path / "demo").mkdir()
        (tmp_path / "demo" / "runs.json").write_text("[]", encoding="utf-8")

        result = run_demo(env)

        assert result.returncode == 1
        assert f"port {port} on 127.0.0.1 is busy" in result.stderr
        assert "Nothing was changed" in result.stderr
        assert "choose another port: SPAAZA_SANDBOX_PORT=" in result.stderr
        assert warehouse.read_bytes() == before
        assert meltano.state(demo_id) == demo_state
        assert (tmp_path / "demo" / "runs.json").read_text(encoding="utf-8") == "[]"
        assert other.requests == [], "the demo talked to a sandbox it did not start"


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
