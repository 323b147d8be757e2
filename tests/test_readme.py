"""The README stays true: its settings table is the tap's, and its tap commands run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "scripts"))

from readme_modules import module_list, readme_modules  # noqa: E402
from readme_settings import readme_table, settings_table  # noqa: E402


def readme_blocks(marker: str) -> list[list[str]]:
    """The command lines of each fenced block that follows ``<!-- tested: marker -->``."""
    text = README.read_text(encoding="utf-8")
    pattern = rf"<!-- tested: {marker} -->\n```\w*\n(.*?)```"
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in re.findall(pattern, text, flags=re.DOTALL)
    ]


def last_state(output: Path) -> dict[str, Any]:
    """The value of the last STATE message in a file of Singer messages."""
    states = [
        json.loads(line)["value"]
        for line in output.read_text(encoding="utf-8").splitlines()
        if line.startswith("{") and json.loads(line)["type"] == "STATE"
    ]
    assert states, f"{output.name} holds no STATE message"
    return cast("dict[str, Any]", states[-1])


def test_settings_table_is_the_one_about_prints() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == settings_table(), (
        "README settings table is stale: run `python scripts/readme_settings.py`"
    )


def test_module_list_is_the_one_the_docstrings_give() -> None:
    assert readme_modules(README.read_text(encoding="utf-8")) == module_list(), (
        "README module list is stale: run `python scripts/readme_modules.py`"
    )


def test_direct_usage_commands_run_as_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=300)
    config = sb.tap_config(delete_completed_tasks=True, start_date="2020-01-01T00:00:00Z")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    blocks = readme_blocks("cli")
    assert blocks, "no <!-- tested: cli --> block in the README"
    for line in blocks[0]:
        if "state.json" in line and not (tmp_path / "state.json").exists():
            # "The last STATE line of a run's output is the state for the next run."
            state = last_state(tmp_path / "first-run.jsonl")
            (tmp_path / "state.json").write_text(json.dumps(state), encoding="utf-8")
            sb.add_users(7)
        done = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"README command failed: {line}\n{done.stderr[-2000:]}"
    first = [json.loads(x) for x in (tmp_path / "first-run.jsonl").read_text().splitlines()]
    assert sum(m["type"] == "RECORD" for m in first) == 300
    following = [json.loads(x) for x in (tmp_path / "next-run.jsonl").read_text().splitlines()]
    new_ids = {m["record"]["id"] for m in following if m["type"] == "RECORD"}
    assert new_ids >= set(range(301, 308))
