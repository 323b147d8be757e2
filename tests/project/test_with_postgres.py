"""`make test`'s PostgreSQL wrapper stops the server it started, and only that one.

The PostgreSQL commands are stand-ins (a narrow unit: the wrapper's decisions), recording what
the wrapper asks of them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBS = {
    "pg_lsclusters": 'echo "15 main 5432 $(cat "$PG_STATE/status") postgres /data /log"',
    "pg_ctlcluster": (
        'echo "$*" >> "$PG_STATE/calls"\n'
        'case "$3" in start) echo online;; stop) echo down;; esac > "$PG_STATE/status"'
    ),
    "su": 'bash -c "$3"',  # su postgres -c COMMAND
    "psql": 'case "$*" in *pg_stat_activity*) cat "$PG_STATE/others";; *) echo 1;; esac',
}


def run_wrapper(tmp_path: Path, *, status: str, others: int, exit_code: int = 0) -> tuple[int, str]:
    """Run the wrapper around a command exiting ``exit_code``; return its status and the calls."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/usr/bin/env bash\n{body}\n", encoding="utf-8")
        (stubs / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    (state / "status").write_text(f"{status}\n", encoding="utf-8")
    (state / "others").write_text(f"{others}\n", encoding="utf-8")
    (state / "calls").write_text("", encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_TEST_")},
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "PG_STATE": str(state),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "with-postgres.sh"), "bash", "-c", f"exit {exit_code}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode, (state / "calls").read_text(encoding="utf-8")


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
def test_a_server_it_started_is_stopped_and_the_command_status_kept(tmp_path: Path) -> None:
    status, calls = run_wrapper(tmp_path, status="down", others=0, exit_code=3)
    assert status == 3
    assert calls.splitlines() == ["15 main start", "15 main stop"]


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
def test_a_server_that_was_running_is_left_running(tmp_path: Path) -> None:
    status, calls = run_wrapper(tmp_path, status="online", others=0)
    assert status == 0
    assert calls == ""


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
def test_a_server_it_started_but_others_now_use_is_left_running(tmp_path: Path) -> None:
    status, calls = run_wrapper(tmp_path, status="down", others=2)
    assert status == 0
    assert calls.splitlines() == ["15 main start"]
