"""The connection test: token and chain checked with one task listing, no export created."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


def connection_test(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run ``tap-spaaza-users --test`` with a config file."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_of_another_chain_is_named_without_creating_an_export(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., Any],
    tmp_path: Path,
) -> None:
    assert sync(fast_config).error is None  # the token's chain now has a task
    tasks_before = dict(small_sandbox.tasks)
    small_sandbox.request_log.clear()

    result = connection_test(tmp_path, {**fast_config, "chain_id": small_sandbox.other_chain_id})

    assert result.returncode == 1
    assert f"Setting chain_id is {small_sandbox.other_chain_id}" in result.stderr
    assert f"tasks of chain {small_sandbox.chain_id}" in result.stderr
    assert "Traceback" not in result.stderr
    assert [(r.method, r.path) for r in small_sandbox.requests] == [("GET", "/tasks")]
    assert small_sandbox.tasks == tasks_before


def test_unreachable_api_is_said_in_one_line(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    config = {**fast_config, "api_url": "http://127.0.0.1:9", "max_retries": 0}

    result = connection_test(tmp_path, config)

    assert result.returncode == 1
    assert "GET /tasks failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert small_sandbox.requests == []
