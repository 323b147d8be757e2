"""The README and docs/ stay true: every fenced block runs in a test or says why it cannot.

The settings table is the tap's, the module list (CONTRIBUTING.md) the docstrings', the README
fits on a few screens in the order a user reads it, and every link between the pages resolves.
"""

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
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
sys.path.insert(0, str(ROOT / "scripts"))

from readme_modules import listed_modules, module_list  # noqa: E402
from readme_settings import readme_table, settings_table  # noqa: E402
from support.doc_blocks import Block, all_blocks, documents, marked, marked_text  # noqa: E402

#: Where the examples expect the sandbox; tests move them to their own sandbox.
README_SANDBOX = "127.0.0.1:8765"
#: Every kind of tested block, and the test that runs (or checks) it.
MARKERS = {
    "quickstart": "test_quick_start_commands_are_the_makefiles",
    "activate": "every block below runs after it (here and in tests/integration)",
    "sandbox": "test_sandbox_commands_print_what_the_docs_say",
    "sandbox-users": "test_sandbox_control_commands_run_as_written",
    "cli": "test_direct_usage_commands_run_as_written",
    "cli-env": "test_direct_usage_with_environment_variables_runs_as_written",
    "config": "test_config_snippets_are_settings_the_tap_accepts",
    "config-yaml": "test_config_snippets_are_settings_the_tap_accepts",
    "own-project": "tests/integration/test_hub_definition_meltano.py",
    "meltano": "tests/integration/test_readme_meltano.py",
    "postgres": "tests/integration/test_readme_meltano.py",
    "pipe": "tests/integration/test_readme_meltano.py",
    "chains-two-yml": "tests/integration/test_meltano_chains.py",
    "chains-two": "tests/integration/test_meltano_chains.py",
    **dict.fromkeys(
        ["chains-yml", "chains-sandbox", "chains-env", "chains-first", "chains-run", "chains-sql"],
        "tests/integration/test_docs_several_chains.py",
    ),
    **dict.fromkeys(
        [
            "logging-meltano-yml",
            "logging-meltano-json",
            "logging-sdk-config",
            "logging-sdk-run",
            "logging-heartbeat",
        ],
        "tests/integration/test_docs_logging.py",
    ),
    **dict.fromkeys(
        ["object-storage-yml", "object-storage-run", "object-storage-moto"],
        "tests/integration/test_docs_object_storage.py",
    ),
}
#: The headings of the README, in the order a user reads them.
README_SECTIONS = [
    "Quick start", "Install", "Configure", "Run with Meltano", "Guarantees in brief", "Read more",
    "License",
]  # fmt: skip
README_MAX_LINES = 250
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def bash_syntax_ok(block: Block) -> None:
    """The block is valid bash."""
    assert subprocess.run(["bash", "-n", "-c", block.text], check=False).returncode == 0


def installs_from_the_checkout(block: Block) -> None:
    """Valid bash whose every pip command installs or builds this checkout (`.`)."""
    bash_syntax_ok(block)
    for line in block.lines:
        for command in line.split("&&"):
            words = shlex.split(command, comments=True)
            if "pip" in Path(words[0]).name:
                assert any(w == "." or w.startswith((".[", "'.[")) for w in words), line


def pins_a_commit_of_your_clone(block: Block) -> None:
    """Valid bash whose git URL is the user's own and is pinned to a commit, not a tag."""
    bash_syntax_ok(block)
    (url,) = re.findall(r"git\+(\S+?)'", block.text)
    assert "your-org" in url
    assert url.endswith("@COMMIT"), "the project has no release tag to pin"


def names_real_environments_plugins_and_files(block: Block) -> None:
    """Valid bash whose meltano commands name this project's environments and plugins."""
    bash_syntax_ok(block)
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    environments = {e["name"] for e in project["environments"]}
    plugins = {p["name"] for kind in project["plugins"].values() for p in kind}
    for line in block.lines:
        words = shlex.split(line, comments=True)
        if words[0] == "meltano":
            options = [w for w in words[1:] if w.startswith("--environment=")]
            assert {w.split("=", 1)[1] for w in options} <= environments, line
            assert words[-1] in plugins, line
            assert words[len(options) + 1] in {"test", "run", "invoke", "el"}, line
        elif words[0] == "cp":
            assert (ROOT / words[1]).is_file(), line
        else:
            pytest.fail(f"no check for: {line}")


def is_a_sequence_diagram(block: Block) -> None:
    """A Mermaid sequence diagram: a picture of the protocol, nothing to run."""
    assert block.language == "mermaid"
    assert block.lines[0].strip() == "sequenceDiagram"


#: Why a block may not run in a test, and what the test checks of it instead.
NOT_RUN: dict[str, Callable[[Block], None]] = {
    "installs packages (make setup does the same; test_packaging.py installs the wheel)": (
        installs_from_the_checkout
    ),
    "needs your clone's git URL and a commit of it": pins_a_commit_of_your_clone,
    "needs real Spaaza credentials": names_real_environments_plugins_and_files,
    "a sequence diagram, not commands": is_a_sequence_diagram,
}


def all_docs_text() -> str:
    """The README and every docs/ page, one after the other."""
    return "\n".join(path.read_text(encoding="utf-8") for path in documents())


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


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
    activate = marked_text("activate")
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
    assert listed_modules(CONTRIBUTING.read_text(encoding="utf-8")) == module_list(), (
        "CONTRIBUTING.md module list is stale: run `python scripts/readme_modules.py`"
    )


def test_the_readme_fits_on_a_few_screens_in_the_order_a_user_reads() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == README_SECTIONS


def test_every_block_runs_in_a_test_or_says_why_not() -> None:
    blocks = all_blocks()
    assert len(blocks) > len(MARKERS)
    unmarked = [(b.path.name, b.text[:60]) for b in blocks if b.how is None]
    assert unmarked == [], "a block without <!-- tested: NAME --> or <!-- not run: REASON -->"
    markers = {b.label for b in blocks if b.how == "tested"}
    assert markers == set(MARKERS), "a marker no test runs, or a test without its block"
    for block in blocks:
        if block.how == "not run":
            assert block.label in NOT_RUN, f"{block.path.name}: unknown reason {block.label!r}"
            NOT_RUN[block.label](block)


def test_every_link_between_the_pages_resolves() -> None:
    pages = [*documents(), CONTRIBUTING, ROOT / "benchmarks" / "README.md"]
    checked = 0
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            assert linked.exists(), f"{page.name} links to missing {target}"
            if anchor:
                headings = re.findall(
                    r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE
                )
                assert anchor in {github_anchor(h) for h in headings}, f"{page.name}: {target}"
            checked += 1
    assert checked > 10


def test_quick_start_commands_are_the_makefiles() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (block,) = marked("quickstart")
    targets = [shlex.split(line, comments=True) for line in block.lines]
    assert targets == [["make", "demo"], ["make", "test"]]
    assert re.search(r"^demo: setup\n\tbash scripts/demo.sh$", makefile, re.MULTILINE), (
        "test_demo.py"
    )
    assert re.search(r"^test: lint typecheck pytest$", makefile, re.MULTILINE)
    assert re.search(r"^test-fast: ", makefile, re.MULTILINE)


def test_direct_usage_commands_run_as_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=300)  # the default seed: the demo token the docs show
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = activated_env(tmp_path)
    block = marked_text("cli")
    first, _, rest = block.partition("python scripts/last_state.py")
    address = sb.url.removeprefix("http://")

    done = run_readme_lines([first], tmp_path, env, address)
    assert done.returncode == 0, f"commands failed:\n{first}\n{done.stderr[-2000:]}"
    sb.add_users(7)
    done = run_readme_lines(["python scripts/last_state.py" + rest], tmp_path, env, address)
    assert done.returncode == 0, f"commands failed:\n{rest}\n{done.stderr[-2000:]}"

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
    (block,) = marked("cli-env")

    done = run_readme_lines(block.lines, tmp_path, activated_env(tmp_path), sb.url[7:])

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"accepted the token for chain {sb.chain_id}" in done.stderr
    assert [(r.method, r.path) for r in sb.requests if r.server == "api"] == [("GET", "/tasks")]


def test_sandbox_control_commands_run_as_written(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=20)
    (block,) = marked("sandbox-users")
    count, add = block.lines

    counted = run_readme_lines([count], tmp_path, activated_env(tmp_path), sb.url[7:])
    added = run_readme_lines([add], tmp_path, activated_env(tmp_path), sb.url[7:])

    assert json.loads(counted.stdout) == {"count": 20}
    assert len(json.loads(added.stdout)["ids"]) == 5
    assert sb.user_count() == 25


def test_sandbox_commands_print_what_the_docs_say(tmp_path: Path) -> None:
    prose = all_docs_text()
    for block in marked("sandbox"):
        (line,) = [x for x in block.lines if not x.startswith("#")]
        command = line.split("#")[0].replace("--port 8765", "--port 0")
        script = f"{marked_text('activate')}exec {command}"
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
            assert f"`{value}`" in prose, f"the docs do not show the printed {value}"


def test_config_snippets_are_settings_the_tap_accepts() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    schema = json.loads(about.stdout)["settings"]
    snippets = [json.loads(b.text) for b in marked("config")]
    snippets += [yaml.safe_load(b.text) for b in marked("config-yaml")]
    assert len(snippets) >= 3
    for snippet in snippets:
        assert set(snippet) <= set(schema["properties"]), f"unknown settings in {snippet}"
        jsonschema.Draft7Validator({**schema, "required": []}).validate(snippet)


def test_the_checks_of_blocks_that_do_not_run_can_fail() -> None:
    tagged = Block(
        README, "not run", "", "sh", "pip install 'x @ git+https://h/your-org/x.git@v0.1.0'\n"
    )
    with pytest.raises(AssertionError, match="no release tag"):
        pins_a_commit_of_your_clone(tagged)
    elsewhere = Block(README, "not run", "", "sh", "pip install requests\n")
    with pytest.raises(AssertionError):
        installs_from_the_checkout(elsewhere)
