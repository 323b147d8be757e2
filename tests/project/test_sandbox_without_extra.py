"""Without the ``[sandbox]`` extra, both sandbox commands say in one line what to install.

werkzeug is hidden, not uninstalled: a ``sitecustomize`` on the child's ``PYTHONPATH`` puts a
finder first on ``sys.meta_path`` that fails ``import werkzeug`` with the very error Python
raises when it is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tap_spaaza_users.sandbox import INSTALL_HINT

BIN = Path(sys.executable).parent
HIDE_WERKZEUG = """
import sys


class HideWerkzeug:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "werkzeug":
            raise ModuleNotFoundError("No module named 'werkzeug'", name="werkzeug")


sys.meta_path.insert(0, HideWerkzeug())
"""
COMMANDS = {
    "spaaza-sandbox": [str(BIN / "spaaza-sandbox")],
    "python -m": [sys.executable, "-m", "tap_spaaza_users.sandbox"],
}


@pytest.fixture
def without_werkzeug(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import werkzeug`` fails as if it were not installed."""
    (tmp_path / "sitecustomize.py").write_text(HIDE_WERKZEUG, encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to its end and capture both streams."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_test_really_hides_werkzeug(without_werkzeug: dict[str, str]) -> None:
    probe = run([sys.executable, "-c", "import werkzeug"], without_werkzeug)

    assert probe.returncode == 1
    assert "ModuleNotFoundError: No module named 'werkzeug'" in probe.stderr


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_sandbox_command_without_werkzeug_prints_the_pip_command_and_exits_2(
    command: list[str], without_werkzeug: dict[str, str]
) -> None:
    result = run([*command, "--port", "0"], without_werkzeug)

    assert result.returncode == 2
    assert result.stderr == INSTALL_HINT + "\n"  # one line, no traceback
    assert result.stdout == ""
    assert "pip install 'tap-spaaza-users[sandbox]'" in INSTALL_HINT
    assert "werkzeug" in INSTALL_HINT


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_sandbox_command_with_werkzeug_runs_the_sandbox_command_line(command: list[str]) -> None:
    result = run([*command, "--help"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: spaaza-sandbox")
