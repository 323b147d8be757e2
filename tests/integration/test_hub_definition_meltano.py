"""Meltano itself takes the Hub definition: `meltano add --from-ref` in a new project."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import yaml

from .conftest import MELTANO_TIMEOUT_SECONDS, PROJECT_ROOT, clean_env, meltano_executable, require

if TYPE_CHECKING:
    from pathlib import Path

DEFINITION = PROJECT_ROOT / "hub" / "extractors" / "tap-spaaza-users" / "contributors.yml"


def run_meltano(project: Path, *args: str) -> str:
    """Run `meltano ARGS` in ``project``; fail with its output unless it succeeds."""
    env = clean_env()
    env.pop("MELTANO_ENVIRONMENT")
    result = subprocess.run(
        [str(meltano_executable()), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-4000:]}"
    return result.stdout


def test_meltano_adds_the_extractor_from_the_hub_definition(tmp_path: Path) -> None:
    require(meltano_executable().exists(), "meltano not found", "run `make test`")
    run_meltano(tmp_path, "init", "project", "--no-usage-stats")
    project = tmp_path / "project"

    run_meltano(
        project, "add", "extractor", "tap-spaaza-users", "--from-ref", str(DEFINITION),
        "--no-install",
    )  # fmt: skip
    listed = run_meltano(project, "config", "list", "tap-spaaza-users", "--all")

    definition = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    shown = dict(re.findall(r"^(\w+) \[env: \w+\] current value: (.+) \(", listed, re.MULTILINE))
    assert set(shown) == {setting["name"] for setting in definition["settings"]}
    assert shown["lookback_minutes"] == "60"
    assert shown["poll_interval_seconds"] == "5"
    assert shown["segment_join"] == "'all'"
    added = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = added["plugins"]["extractors"]
    assert plugin["settings"] == definition["settings"]
    assert plugin["capabilities"] == definition["capabilities"]
    assert plugin["commands"] == definition["commands"]
