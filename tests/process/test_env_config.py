"""Settings from environment variables (`--config=ENV`, `.env`, Meltano) work like a config file."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox


def run_with_env(
    tmp_path: Path, settings: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    env.update({f"TAP_SPAAZA_USERS_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config=ENV", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def env_settings(sb: Sandbox) -> dict[str, str]:
    return {
        "api_url": sb.url,
        "chain_id": str(sb.chain_id),
        "access_token_id": sb.token_id,
        "access_token_secret": sb.token_secret,
        "poll_interval_seconds": "0.05",
        "poll_max_interval_seconds": "0.2",
        "request_timeout_seconds": "10",
        "retry_initial_wait_seconds": "0.01",
        "lookback_minutes": "0",
    }


def test_numbers_given_as_environment_text_are_read_as_numbers(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=50)

    run = run_with_env(tmp_path, env_settings(sb))

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count('"type":"RECORD"') + run.stdout.count('"type": "RECORD"') == 50


def test_a_number_setting_that_is_not_a_number_is_named_before_any_request(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=5)

    run = run_with_env(tmp_path, {**env_settings(sb), "poll_interval_seconds": "five"}, "--test")

    assert run.returncode == 1
    assert "Setting poll_interval_seconds must be a number, not 'five'." in run.stderr
    assert sb.requests == []


def test_a_short_secret_does_not_mangle_error_messages(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(users=5)

    run = run_with_env(tmp_path, {**env_settings(sb), "access_token_secret": "y"}, "--test")

    assert run.returncode == 1
    assert "Spaaza rejected the access token" in run.stderr
    assert "***" not in run.stderr
