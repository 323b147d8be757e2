"""Two `meltano run` of the same settings started a second apart share their export tasks."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import parse_utc

from .conftest import MELTANO_TIMEOUT_SECONDS, Meltano, private_sys_dir, read_jsonl

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

WINDOWS = 24


def start_run(meltano: Meltano, tmp_path: Path, name: str) -> subprocess.Popen[str]:
    """Start `meltano run tap-spaaza-users target-jsonl` with a system database of its own.

    Each run has its own Meltano system directory (as two schedulers, or two hosts, would):
    Meltano's own lock on a pipeline does not see the other run.
    """
    root = tmp_path / name
    root.mkdir()
    env = {
        **meltano.env,
        "MELTANO_SYS_DIR_ROOT": str(private_sys_dir(root)),
        "TARGET_JSONL_DESTINATION_PATH": str(root / "out"),
    }
    (root / "out").mkdir()
    return subprocess.Popen(
        [str(meltano.executable), "run", "tap-spaaza-users", "target-jsonl"],
        cwd=meltano.project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_a_second_apart_export_each_window_once(
    meltano: Meltano, sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=300, seed=7, task_base_seconds=0.5)  # tasks take a while
    start = sb.clock.now() - dt.timedelta(days=WINDOWS)
    meltano.use_sandbox(sb, start_date=start.isoformat(), backfill_window_days=1)
    runs = []
    for name in ("first", "second"):
        runs.append(start_run(meltano, tmp_path, name))
        time.sleep(1)
    errors = [run.communicate(timeout=MELTANO_TIMEOUT_SECONDS)[1] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
    posts = [r for r in sb.requests if r.method == "POST" and r.path == "/tasks"]
    yielded = [r for r in sb.requests if r.method == "DELETE"]
    assert len(posts) - len(yielded) <= WINDOWS + 2  # two runs used to make 46
    expected = {int(u["id"]) for u in sb.users() if parse_utc(u["created_date"]) >= start}
    for name in ("first", "second"):
        rows = read_jsonl(tmp_path / name / "out" / "users.jsonl")
        assert {int(str(row["id"])) for row in rows} == expected
    assert all("the task is gone" not in error for error in errors)
