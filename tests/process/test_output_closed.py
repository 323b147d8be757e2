"""The reader of the tap's output goes away: one line naming the cause, no traceback.

``| head -c 100000`` (the reader closes the pipe mid-sync), a standard output closed from the
start (``>&-``) and a full disk behind standard output (``/dev/full``) each end the tap with
status 1 and one ERROR line that says what happened, not "an unhandled error".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from support.tap_cli import CliRun

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


def run_in_shell(tmp_path: Path, sandbox: Sandbox, redirect: str) -> CliRun:
    """Run the tap under bash with its standard output sent as ``redirect`` says."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sandbox.tap_config(delete_completed_tasks=False)))
    stderr = tmp_path / "stderr.log"
    tap = f"{sys.executable} -m tap_spaaza_users --config {config}"
    script = f"{tap} 2>{stderr} {redirect}; echo ${{PIPESTATUS[0]}}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, env=env, timeout=120, check=False
    )
    status = int(done.stdout.decode().strip().splitlines()[-1])
    return CliRun(status, "", stderr.read_text())


@pytest.mark.parametrize(
    ("redirect", "cause"),
    [
        ("| head -c 100000 >/dev/null", "closed it before the sync ended; this is not a tap error"),
        (">&-", "standard output is closed, and the tap writes its Singer messages there"),
        (">/dev/full", "no space is left on the device standard output goes to"),
    ],
    ids=["reader-closed", "stdout-closed", "disk-full"],
)
def test_an_output_that_goes_away_ends_the_tap_with_one_line_naming_the_cause(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path, redirect: str, cause: str
) -> None:
    sandbox = sandbox_factory(users=1000, seed=2)

    run = run_in_shell(tmp_path, sandbox, redirect)

    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "An unhandled error" not in run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert cause in run.error
