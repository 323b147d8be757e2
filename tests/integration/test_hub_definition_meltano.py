"""A user's own Meltano project takes the Hub definition: add, install, test and run, end to end.

The project is made by `meltano init` in a temporary folder outside this repository, as a user's
would be; the README's block adds and installs the extractor from the definition with the
checkout as its `pip_url`, then the tap runs against a sandbox into target-jsonl.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import yaml
from support.doc_blocks import marked_text
from support.requirements import require

from .conftest import (
    MELTANO_TIMEOUT_SECONDS,
    PROJECT_ROOT,
    clean_env,
    meltano_executable,
    read_jsonl,
    settings_env,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

DEFINITION = PROJECT_ROOT / "hub" / "extractors" / "tap-spaaza-users" / "contributors.yml"
#: Where the README's block expects the user's clone of this repository.
README_CHECKOUT = "path/to/tap-spaaza-users"
#: target-jsonl as a user's project would declare it (the Hub needs an account in Meltano 4.4).
TARGET_JSONL = {
    "name": "target-jsonl",
    "namespace": "target_jsonl",
    "variant": "andyh1203",
    "label": "JSON Lines",
    "pip_url": "target-jsonl==0.1.4",
    "executable": "target-jsonl",
    "settings": [{"name": "destination_path", "kind": "string"}],
}


def run_meltano(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `meltano ARGS` in ``project``; fail with its output unless it succeeds."""
    result = subprocess.run(
        [str(meltano_executable()), *args],
        cwd=project,
        env=env or user_env(),
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"meltano {' '.join(args)}:\n{result.stderr[-4000:]}"
    return result.stdout


def user_env() -> dict[str, str]:
    """A user's shell: no environment chosen, meltano on PATH."""
    env = clean_env()
    env.pop("MELTANO_ENVIRONMENT")
    env["PATH"] = f"{meltano_executable().parent}:{env['PATH']}"
    return env


def new_project(tmp_path: Path) -> Path:
    """Return a new Meltano project, made by `meltano init` outside this repository."""
    require(meltano_executable().exists(), "meltano not found", "run `make test`")
    run_meltano(tmp_path, "init", "project", "--no-usage-stats")
    project = tmp_path / "project"
    assert PROJECT_ROOT not in project.parents
    return project


def plugins_named(project: Path, name: str) -> list[tuple[str, str]]:
    """Return (plugin type, name) of every plugin of that name in the project's meltano.yml."""
    added = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    return [
        (kind, plugin["name"])
        for kind, plugins in added["plugins"].items()
        for plugin in plugins
        if plugin["name"] == name
    ]


def test_a_new_project_adds_installs_tests_and_runs_the_tap_from_the_definition(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    project = new_project(tmp_path)
    config = sandbox.tap_config(poll_interval_seconds=0.2, poll_max_interval_seconds=1)
    env = {**user_env(), **settings_env("TAP_SPAAZA_USERS", config)}
    block = marked_text("own-project").replace(README_CHECKOUT, str(PROJECT_ROOT))

    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{block}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT_SECONDS,
        check=False,
    )

    assert done.returncode == 0, f"README block failed:\n{done.stderr[-4000:]}"
    assert "1 test(s) successful" in done.stdout + done.stderr
    assert plugins_named(project, "tap-spaaza-users") == [("extractors", "tap-spaaza-users")]
    (plugin,) = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]["extractors"]
    assert plugin["pip_url"] == str(PROJECT_ROOT)

    definition = tmp_path / "target-jsonl.yml"
    definition.write_text(yaml.safe_dump(TARGET_JSONL), encoding="utf-8")
    run_meltano(
        project, "add", "--plugin-type", "loader", "target-jsonl", "--from-ref", str(definition),
        env=env,
    )  # fmt: skip
    output = tmp_path / "jsonl"
    output.mkdir()
    run_env = {**env, "TARGET_JSONL_DESTINATION_PATH": str(output)}
    run_meltano(project, "run", "tap-spaaza-users", "target-jsonl", env=run_env)

    (written,) = output.glob("users*.jsonl")
    assert {r["id"] for r in read_jsonl(written)} == {int(u["id"]) for u in sandbox.users()}
    state = json.loads(run_meltano(project, "state", "get", "dev:tap-spaaza-users-to-target-jsonl"))
    assert state["singer_state"]["bookmarks"]["users"]["replication_key_value"]


def test_meltano_adds_the_extractor_from_the_hub_definition(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    run_meltano(
        project, "add", "--plugin-type", "extractor", "tap-spaaza-users", "--from-ref",
        str(DEFINITION), "--no-install",
    )  # fmt: skip
    listed = run_meltano(project, "config", "list", "tap-spaaza-users", "--all")

    assert plugins_named(project, "tap-spaaza-users") == [("extractors", "tap-spaaza-users")]
    definition = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    shown = dict(re.findall(r"^([\w.]+) \[env: \w+\] current value: (.+) \(", listed, re.MULTILINE))
    assert set(shown) == {setting["name"] for setting in definition["settings"]}
    assert shown["lookback_minutes"] == "60"
    assert shown["poll_interval_seconds"] == "5"
    assert shown["segment_join"] == "'all'"
    added = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = added["plugins"]["extractors"]
    assert plugin["settings"] == definition["settings"]
    assert plugin["capabilities"] == definition["capabilities"]
    assert plugin["commands"] == definition["commands"]


def test_dotted_batch_settings_reach_the_tap_as_one_batch_config(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_meltano(
        project, "add", "--plugin-type", "extractor", "tap-spaaza-users", "--from-ref",
        str(DEFINITION), "--no-install",
    )  # fmt: skip
    env = {
        **user_env(),
        "TAP_SPAAZA_USERS_BATCH_CONFIG_ENCODING_FORMAT": "jsonl",
        "TAP_SPAAZA_USERS_BATCH_CONFIG_ENCODING_COMPRESSION": "gzip",
        "TAP_SPAAZA_USERS_BATCH_CONFIG_STORAGE_ROOT": "file:///tmp/batches",
    }

    printed = run_meltano(project, "config", "print", "tap-spaaza-users", env=env)

    config = json.loads(printed)
    assert config["batch_config"] == {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": "file:///tmp/batches"},
    }
