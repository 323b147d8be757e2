"""A sandbox that cannot bind its ports leaves no work directory, no bound port, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

import pytest

from tap_spaaza_users.sandbox import Sandbox
from tap_spaaza_users.sandbox.chains import ChainsSandbox

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield int(busy.getsockname()[1])


@pytest.fixture
def work_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the sandbox makes its temporary work directories during the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("which", ["port", "storage_port"])
def test_busy_port_leaves_no_work_directory(work_root: Path, busy_port: int, which: str) -> None:
    with pytest.raises(OSError, match="cannot listen on"):
        Sandbox(users=10, **{which: busy_port})  # type: ignore[arg-type]
    assert list(work_root.glob("spaaza-sandbox-*")) == []


def test_busy_storage_port_releases_the_api_port(busy_port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        api_port = int(probe.getsockname()[1])
    with pytest.raises(OSError, match="cannot listen on"):
        Sandbox(users=10, port=api_port, storage_port=busy_port)
    with socket.socket() as again:
        again.bind(("127.0.0.1", api_port))  # free again: the half-started sandbox let it go


def test_busy_front_port_of_several_chains_leaves_no_work_directory(
    work_root: Path, busy_port: int
) -> None:
    with pytest.raises(OSError, match="cannot listen on"):
        ChainsSandbox([1234, 5678], users=10, port=busy_port)
    assert list(work_root.glob("spaaza-sandbox-*")) == []


def test_command_on_a_busy_port_says_so_without_a_traceback(tmp_path: Path, busy_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", str(busy_port),
         "--users", "10"],
        capture_output=True, text=True, timeout=30, check=False, env=_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"spaaza-sandbox: cannot listen on 127.0.0.1:{busy_port}: in use" in result.stderr
    assert "pick another --port" in result.stderr
    assert list(tmp_path.glob("spaaza-sandbox-*")) == []


def _env(tmp_path: Path) -> dict[str, str]:
    import os  # noqa: PLC0415

    return {**os.environ, "TMPDIR": str(tmp_path)}
