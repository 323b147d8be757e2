"""Checking a configuration through Meltano: `meltano config test` and the tap's `--test`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

    from .conftest import Meltano

WRONG_SECRET = "not-the-secret-0123456789"  # noqa: S105


def exports_created(sandbox: Sandbox) -> int:
    """Count the export tasks the sandbox created (accepted `POST /tasks`)."""
    return sum(
        1 for r in sandbox.requests if r.method == "POST" and r.path == "/tasks" and r.status < 300
    )


def test_meltano_config_test_passes_against_the_sandbox(meltano: Meltano, sandbox: Sandbox) -> None:
    meltano.use_sandbox(sandbox)

    result = meltano("--environment=dev", "config", "test", "tap-spaaza-users")

    assert "Plugin configuration is valid" in result.stdout + result.stderr


def test_meltano_config_test_fails_clearly_with_a_wrong_secret(
    meltano: Meltano, sandbox: Sandbox
) -> None:
    meltano.use_sandbox(sandbox, access_token_secret=WRONG_SECRET)

    result = meltano("--environment=dev", "config", "test", "tap-spaaza-users", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Plugin configuration is invalid" in output
    assert "401" in output
    assert "access token" in output.lower()
    assert WRONG_SECRET not in output
    assert exports_created(sandbox) == 0


def test_connection_test_through_meltano_creates_no_export(
    meltano: Meltano, sandbox: Sandbox
) -> None:
    meltano.use_sandbox(sandbox)

    result = meltano("invoke", "tap-spaaza-users", "--test")

    assert "Connection test passed" in result.stdout + result.stderr
    assert exports_created(sandbox) == 0
    assert [(r.method, r.path) for r in sandbox.requests if r.server == "api"] == [
        ("GET", "/tasks")
    ]


def test_connection_test_through_meltano_fails_clearly_with_a_wrong_secret(
    meltano: Meltano, sandbox: Sandbox
) -> None:
    meltano.use_sandbox(sandbox, access_token_secret=WRONG_SECRET)

    result = meltano("invoke", "tap-spaaza-users", "--test", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "rejected the access token" in output
    assert WRONG_SECRET not in output
    assert sandbox.token_secret not in output


def test_meltano_test_runs_the_connection_check_without_an_export(
    meltano: Meltano, sandbox: Sandbox
) -> None:
    meltano.use_sandbox(sandbox)

    result = meltano("test", "tap-spaaza-users")

    assert "1 test(s) successful" in result.stdout + result.stderr
    assert exports_created(sandbox) == 0
    assert [(r.method, r.path) for r in sandbox.requests if r.server == "api"] == [
        ("GET", "/tasks")
    ]


def test_meltano_test_fails_clearly_with_a_wrong_secret(meltano: Meltano, sandbox: Sandbox) -> None:
    meltano.use_sandbox(sandbox, access_token_secret=WRONG_SECRET)

    result = meltano("test", "tap-spaaza-users", check=False)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "rejected the access token" in output
    assert WRONG_SECRET not in output
