"""tap-spaaza-users--sandbox: the sandbox through Meltano, impossible to confuse with production."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
from typing import TYPE_CHECKING

import pytest
import yaml

from tap_spaaza_users.sandbox import Sandbox

from .conftest import MELTANO_TIMEOUT_SECONDS, PROJECT_ROOT, read_jsonl

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Meltano

EXTRACTOR = "tap-spaaza-users--sandbox"
#: Where meltano.yml pins the sandbox extractor; tests move it to their own sandbox's port.
PINNED_ADDRESS = "127.0.0.1:8765"
REAL_LOOKING = {
    "TAP_SPAAZA_USERS_API_URL": "https://services-prod.spaaza.com",
    "TAP_SPAAZA_USERS_CHAIN_ID": "999",
    "TAP_SPAAZA_USERS_ACCESS_TOKEN_ID": "11111111-2222-3333-4444-555555555555",
    "TAP_SPAAZA_USERS_ACCESS_TOKEN_SECRET": "real-secret-from-dotenv-0123456789",
}


def sandbox_project(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A copy of the Meltano project whose sandbox extractor points at ``sandbox``'s port.

    Only the port differs from meltano.yml (the test's sandbox cannot count on 8765 being
    free); `.venv` links to the checkout's, so the README's `source .venv/bin/activate` works.
    """
    project = tmp_path / "project"
    project.mkdir()
    text = (PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert PINNED_ADDRESS in text
    address = sandbox.url.removeprefix("http://")
    (project / "meltano.yml").write_text(text.replace(PINNED_ADDRESS, address), encoding="utf-8")
    (project / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    return project


@pytest.fixture
def demo_sandbox() -> Iterator[Sandbox]:
    """A sandbox with the default seed, whose demo token meltano.yml pins."""
    with Sandbox(users=150, seed=1, task_base_seconds=0.0) as sb:
        yield sb


@pytest.fixture
def project_meltano(meltano: Meltano, demo_sandbox: Sandbox, tmp_path: Path) -> Meltano:
    """The meltano runner in a project copy aimed at the demo sandbox, no environment chosen."""
    meltano.project = sandbox_project(tmp_path, demo_sandbox)
    meltano.env.pop("MELTANO_ENVIRONMENT", None)  # as a user: the default environment, dev
    return meltano


def test_meltano_yml_pins_the_sandbox_demo_token_of_the_default_seed(
    demo_sandbox: Sandbox,
) -> None:
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["extractors"] if p["name"] == EXTRACTOR]
    prefix = "TAP_SPAAZA_USERS__SANDBOX_"
    assert plugin["env"] == {
        prefix + "API_URL": f"http://{PINNED_ADDRESS}",
        prefix + "CHAIN_ID": str(demo_sandbox.chain_id),
        prefix + "ACCESS_TOKEN_ID": demo_sandbox.token_id,
        prefix + "ACCESS_TOKEN_SECRET": demo_sandbox.token_secret,
    }


def test_config_test_reaches_the_sandbox_without_choosing_an_environment(
    project_meltano: Meltano, demo_sandbox: Sandbox
) -> None:
    result = project_meltano("config", "test", EXTRACTOR)

    assert "Plugin configuration is valid" in result.stdout + result.stderr
    assert any(r.method == "POST" and r.path == "/tasks" for r in demo_sandbox.requests)


def test_real_credentials_in_dotenv_and_shell_cannot_redirect_the_sandbox_extractor(
    project_meltano: Meltano, demo_sandbox: Sandbox, tmp_path: Path
) -> None:
    dotenv = "".join(f"{key}={value}\n" for key, value in REAL_LOOKING.items())
    (project_meltano.project / ".env").write_text(dotenv, encoding="utf-8")
    project_meltano.env.update(REAL_LOOKING)

    printed = project_meltano("config", "print", EXTRACTOR).stdout
    project_meltano("config", "test", EXTRACTOR)
    project_meltano("run", EXTRACTOR, "target-jsonl")

    assert f'"api_url": "{demo_sandbox.url}"' in printed
    assert '"chain_id": 1234' in printed
    api_calls = [r for r in demo_sandbox.requests if r.server == "api"]
    assert api_calls
    for call in api_calls:
        authorization = call.headers.get("Authorization", "")
        assert authorization == f"Bearer {demo_sandbox.token_id}:{demo_sandbox.token_secret}"
    records = read_jsonl(tmp_path / "jsonl" / "users.jsonl")
    assert {r["id"] for r in records} == {int(u["id"]) for u in demo_sandbox.users()}


def test_the_sandbox_extractor_uses_the_demo_token(project_meltano: Meltano) -> None:
    result = project_meltano("invoke", EXTRACTOR, "--test")

    assert "accepted the token for chain 1234" in result.stdout + result.stderr


def on_a_terminal(meltano: Meltano, *args: str) -> str:
    """Run `meltano ARGS` with a terminal as stdin, stdout and stderr, as a user would."""
    main, secondary = pty.openpty()
    with subprocess.Popen(
        [str(meltano.executable), *args],
        cwd=meltano.project,
        env=meltano.env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    ) as process:
        os.close(secondary)
        chunks: list[bytes] = []
        while True:
            ready, _, _ = select.select([main], [], [], MELTANO_TIMEOUT_SECONDS)
            if not ready:
                process.kill()
                break
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=MELTANO_TIMEOUT_SECONDS) == 0, b"".join(chunks).decode()
    os.close(main)
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode("utf-8", "replace"))


def test_meltano_test_on_a_terminal_reads_like_meltanos_own_lines(
    project_meltano: Meltano,
) -> None:
    output = on_a_terminal(project_meltano, "test", EXTRACTOR)

    lines = [line.strip() for line in output.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("{")], output
    verdict = [line for line in lines if "Connection test passed" in line]
    assert len(verdict) == 1, output
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \[info     \] tap-spaaza-users Connection",
        verdict[0],
    )
    assert "1 test(s) successful" in output


def test_meltano_invoke_still_renders_the_check_from_json(project_meltano: Meltano) -> None:
    result = project_meltano("invoke", EXTRACTOR, "--test")

    output = result.stdout + result.stderr
    verdict = [line for line in output.splitlines() if "Connection test passed" in line]
    assert len(verdict) == 1
    assert verdict[0].count("[info") == 1, "Meltano parsed the JSON line, not wrapped it"
