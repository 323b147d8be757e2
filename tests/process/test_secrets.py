"""No secret and no signed URL query ever leaves the tap: DEBUG logs, messages, errors, --about."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import CliRun, run_tap

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

DEBUG = {"TAP_SPAAZA_USERS_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}
WRONG_SECRET = "sbx_known-wrong-secret-0123456789"  # noqa: S105 - a test value


def signatures(sandbox: Sandbox) -> set[str]:
    """Every signed-URL signature the storage endpoint was sent."""
    found = set()
    for request in sandbox.requests:
        if request.server == "storage":
            value = request.query.get("X-Amz-Signature")
            found.update(value if isinstance(value, list) else [value] if value else [])
    return found


def assert_nothing_leaks(runs: list[CliRun], secrets: set[str]) -> None:
    """No secret, signature or signed query parameter in any output stream of any run."""
    for run in runs:
        for stream in (run.stdout, run.stderr):
            for secret in secrets:
                assert secret not in stream
            assert "X-Amz-" not in stream
            assert "Bearer" not in stream


def test_debug_logs_and_messages_of_a_troubled_sync_hold_no_secret(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject("status", status=502, method="POST", path="/tasks")
    small_sandbox.inject("status", status=429, retry_after=0, method="GET", path="/tasks/1001")
    small_sandbox.inject("url_expired")
    small_sandbox.inject("storage_status", status=503)
    small_sandbox.inject("drop_connection", after_bytes=2000)
    recovered = run_tap(tmp_path, fast_config, env=DEBUG)
    small_sandbox.inject("task_error", logs=["Segment index is being rebuilt"])
    task_failed = run_tap(tmp_path, fast_config, state=recovered.states[-1], env=DEBUG)
    small_sandbox.inject("url_expired", times=10)
    refused = run_tap(tmp_path, fast_config, env=DEBUG)
    unauthorised = run_tap(
        tmp_path, {**fast_config, "access_token_secret": WRONG_SECRET}, env=DEBUG
    )

    assert recovered.returncode == 0, recovered.stderr
    assert recovered.records
    assert "DEBUG" in recovered.stderr
    assert "csv?<redacted>" in recovered.stderr  # urllib3's wire lines are there, masked
    assert [run.returncode for run in (task_failed, refused, unauthorised)] == [1, 1, 1]
    assert "Segment index is being rebuilt" in task_failed.error
    assert "HTTP 403" in refused.error
    assert "access_token_id" in unauthorised.error
    sigs = signatures(small_sandbox)
    assert len(sigs) >= 2  # one per exported file (the sandbox clock stands still)
    runs = [recovered, task_failed, refused, unauthorised]
    assert_nothing_leaks(runs, {small_sandbox.token_secret, WRONG_SECRET, *sigs})


def test_storage_requests_carry_no_authorization_and_no_cookie(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    small_sandbox.inject(
        "storage_status", status=503, headers={"Set-Cookie": "session=storage-cookie"}
    )
    small_sandbox.inject("url_expired")

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 0, run.stderr
    storage = [r for r in small_sandbox.requests if r.server == "storage"]
    assert [r.status for r in storage] == [503, 403, 200]
    for request in storage:
        names = {name.lower() for name in request.headers}
        assert "authorization" not in names
        assert "cookie" not in names
        assert small_sandbox.token_secret not in str(request.headers)
    api = [r for r in small_sandbox.requests if r.server == "api"]
    assert all(r.headers.get("Authorization", "").endswith(small_sandbox.token_secret) for r in api)


@pytest.mark.parametrize("about_format", [None, "json", "markdown"])
def test_about_output_holds_no_secret(
    fast_config: dict[str, Any], tmp_path: Path, about_format: str | None
) -> None:
    args = ["--about"] + ([f"--format={about_format}"] if about_format else [])

    run = run_tap(tmp_path, fast_config, *args, env=DEBUG)

    assert run.returncode == 0, run.stderr
    assert "access_token_secret" in run.stdout
    assert_nothing_leaks([run], {fast_config["access_token_secret"]})


def test_secret_from_the_environment_stays_out_of_debug_logs(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    settings = {k: v for k, v in fast_config.items() if k != "access_token_secret"}
    env = {**DEBUG, "TAP_SPAAZA_USERS_ACCESS_TOKEN_SECRET": small_sandbox.token_secret}
    small_sandbox.inject("url_expired")

    run = run_tap(tmp_path, settings, "--config", "ENV", env=env)
    about = run_tap(tmp_path, settings, "--config", "ENV", "--about", "--format=json", env=env)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == len(small_sandbox.users())
    assert about.returncode == 0
    assert_nothing_leaks([run, about], {small_sandbox.token_secret, *signatures(small_sandbox)})


@pytest.mark.parametrize(
    ("status", "case"), [(400, str), (503, str), (401, str.upper)], ids=["400", "503", "401-upper"]
)
def test_an_error_body_echoing_the_authorization_header_shows_neither_part_of_the_token(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    status: int,
    case: Callable[[str], str],
) -> None:
    token = f"{small_sandbox.token_id}:{small_sandbox.token_secret}"
    echo = f"Bad request. Headers: Authorization: Bearer {case(token)}"
    small_sandbox.inject("status", status=status, body=echo, method="POST", times=10)

    run = run_tap(tmp_path, fast_config, env=DEBUG)

    assert run.returncode == 1
    assert "Headers: Authorization: Bearer ***:***" in run.error
    for part in (small_sandbox.token_id, small_sandbox.token_secret):
        for output in (run.stdout, run.stderr):
            assert part.lower() not in output.lower()
