"""The README stays true: its settings table is the tap's, and its usage blocks run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jsonschema
import pytest
import yaml

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "scripts"))

from readme_modules import module_list, readme_modules  # noqa: E402
from readme_settings import readme_table, settings_table  # noqa: E402

#: Where the README's examples expect the sandbox; tests move them to their own sandbox.
README_SANDBOX = "127.0.0.1:8765"
#: Every kind of tested block, and the test that runs (or checks) it.
MARKERS = {
    "activate": "every block below runs after it (here and in tests/integration)",
    "sandbox": "test_sandbox_commands_print_what_the_readme_says",
    "cli": "test_direct_usage_commands_run_as_written",
    "cli-env": "test_direct_usage_with_environment_variables_runs_as_written",
    "config": "test_config_snippets_are_settings_the_tap_accepts",
    "syntax": "test_production_commands_name_real_environments_plugins_and_files",
    "meltano": "tests/integration/test_readme_meltano.py",
    "chains-yml": "tests/integration/test_meltano_chains.py",
    "chains": "tests/integration/test_meltano_chains.py",
}


def readme_blocks(marker: str) -> list[list[str]]:
    """The command lines of each fenced block that follows ``<!-- tested: marker -->``."""
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in readme_block_texts(marker)
    ]


def readme_block_texts(marker: str) -> list[str]:
    """The text of each fenced block that follows ``<!-- tested: marker -->``."""
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"<!-- tested: {marker} -->\n```\w*\n(.*?)```", text, flags=re.DOTALL)


def usage_sections() -> str:
    """The README from its Usage section up to its Troubleshooting section."""
    text = README.read_text(encoding="utf-8")
    return text[text.index("\n## Usage\n") : text.index("<!-- troubleshooting:start -->")]


def activated_env(workdir: Path) -> dict[str, str]:
    """An environment without the project's tools on PATH and without tap settings.

    The blocks then find ``tap-spaaza-users``, ``spaaza-sandbox`` and ``meltano`` only
    through the README's activation line, run first, from ``workdir/.venv``.
    """
    venvs = {str(ROOT / ".venv" / "bin"), str(ROOT / ".venv-meltano" / "bin")}
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p not in venvs]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    env.pop("VIRTUAL_ENV", None)
    if not (workdir / ".venv").exists():
        (workdir / ".venv").symlink_to(ROOT / ".venv")
    return {**env, "PATH": os.pathsep.join(path)}


def run_readme_lines(
    lines: list[str], workdir: Path, env: dict[str, str], address: str
) -> subprocess.CompletedProcess[str]:
    """Run README lines with bash after the README's activation line, the sandbox moved."""
    (activate,) = readme_block_texts("activate")
    script = "set -euo pipefail\n" + activate + "\n".join(lines) + "\n"
    return subprocess.run(
        ["bash", "-c", script.replace(README_SANDBOX, address)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


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


def test_every_block_of_the_usage_sections_is_tested() -> None:
    sections = usage_sections()
    fences = re.findall(r"(?:<!-- tested: ([\w-]+) -->\n)?```\w+\n.*?```", sections, re.DOTALL)
    assert fences, "no fenced block in the usage sections"
    assert all(fences), "a usage block without a <!-- tested: ... --> marker"
    assert set(fences) == set(MARKERS), "a marker no test runs, or a test without its block"


def test_direct_usage_commands_run_as_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=300)  # the default seed: the demo token the README shows
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = activated_env(tmp_path)
    (block,) = readme_block_texts("cli")
    first, _, rest = block.partition("python scripts/last_state.py")
    address = sb.url.removeprefix("http://")

    done = run_readme_lines([first], tmp_path, env, address)
    assert done.returncode == 0, f"README commands failed:\n{first}\n{done.stderr[-2000:]}"
    sb.add_users(7)
    done = run_readme_lines(["python scripts/last_state.py" + rest], tmp_path, env, address)
    assert done.returncode == 0, f"README commands failed:\n{rest}\n{done.stderr[-2000:]}"

    assert json.loads((tmp_path / "state.json").read_text()) == last_state(
        tmp_path / "first-run.jsonl"
    )
    first_run = [json.loads(x) for x in (tmp_path / "first-run.jsonl").read_text().splitlines()]
    assert sum(m["type"] == "RECORD" for m in first_run) == 300
    following = [json.loads(x) for x in (tmp_path / "next-run.jsonl").read_text().splitlines()]
    new_ids = {m["record"]["id"] for m in following if m["type"] == "RECORD"}
    assert new_ids >= set(range(301, 308))


def test_direct_usage_with_environment_variables_runs_as_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=20)
    (block,) = readme_blocks("cli-env")

    done = run_readme_lines(block, tmp_path, activated_env(tmp_path), sb.url[len("http://") :])

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"accepted the token for chain {sb.chain_id}" in done.stderr
    assert [(r.method, r.path) for r in sb.requests if r.server == "api"] == [("GET", "/tasks")]


def test_sandbox_commands_print_what_the_readme_says(tmp_path: Path) -> None:
    prose = usage_sections()
    for block in readme_blocks("sandbox"):
        (line,) = [x for x in block if not x.startswith("#")]
        command = line.split("#")[0].replace("--port 8765", "--port 0")
        script = f"{readme_block_texts('activate')[0]}exec {command}"
        with subprocess.Popen(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=activated_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as process:
            assert process.stdout is not None
            printed = [process.stdout.readline() for _ in range(5)]
            process.terminate()
        printed_text = "".join(printed)
        assert re.search(r"Spaaza sandbox API: +http://127\.0\.0\.1:\d+", printed_text)
        labels = ("Chain id", "Access token id", "Access token secret")
        found = [re.search(rf"{label}: +(\S+)", printed_text) for label in labels]
        values = [match.group(1) for match in found if match]
        assert len(values) == len(labels), printed_text
        for value in values:
            assert f"`{value}`" in prose, f"the README does not show the printed {value}"


def test_config_snippets_are_settings_the_tap_accepts() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    schema = json.loads(about.stdout)["settings"]
    for text in readme_block_texts("config"):
        snippet = json.loads(text)
        assert set(snippet) <= set(schema["properties"]), f"unknown settings in {snippet}"
        jsonschema.Draft7Validator({**schema, "required": []}).validate(snippet)


def test_production_commands_name_real_environments_plugins_and_files() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    environments = {e["name"] for e in project["environments"]}
    plugins = {p["name"] for kind in project["plugins"].values() for p in kind}
    for block in readme_blocks("syntax"):
        script = "\n".join(block)
        assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
        for line in block:
            words = shlex.split(line, comments=True)
            if words[0] == "meltano":
                options = [w for w in words[1:] if w.startswith("--environment=")]
                assert {w.split("=", 1)[1] for w in options} <= environments, line
                assert words[-1] in plugins, line
                assert words[len(options) + 1] in {"test", "run", "invoke", "el"}, line
            elif words[0] == "cp":
                assert (ROOT / words[1]).is_file(), line
            else:
                pytest.fail(f"no syntax check for: {line}")
