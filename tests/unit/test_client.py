"""The Tasks API client against the sandbox: auth, retries, and one clear error per fault."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from support.ports import refusing_port

from tap_spaaza_users.api.client import ClientSettings, SpaazaClient
from tap_spaaza_users.api.retries import parse_retry_after
from tap_spaaza_users.errors import (
    SpaazaAPIError,
    SpaazaAuthError,
    SpaazaBadRequestError,
    SpaazaForbiddenError,
    SpaazaNotFoundError,
)
from tap_spaaza_users.sandbox.app import retry_after_date

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

LOGGER = logging.getLogger("tests.client")


def make_client(sandbox: Sandbox, **overrides: Any) -> SpaazaClient:
    settings = {
        "api_url": sandbox.url,
        "chain_id": sandbox.chain_id,
        "token_id": sandbox.token_id,
        "token_secret": sandbox.token_secret,
        "user_agent": "tap-spaaza-users/test",
        "timeout": 5.0,
        "max_retries": 3,
        "retry_initial_wait": 0.01,
        "retry_max_wait": 0.05,
    }
    return SpaazaClient(ClientSettings(**{**settings, **overrides}), LOGGER)


@pytest.fixture
def client(small_sandbox: Sandbox) -> Iterator[SpaazaClient]:
    with contextlib.closing(make_client(small_sandbox)) as api:
        yield api


def api_calls(sandbox: Sandbox, method: str, path: str) -> list[Any]:
    return [
        r for r in sandbox.requests if r.server == "api" and (r.method, r.path) == (method, path)
    ]


def test_requests_carry_the_bearer_token_and_a_user_agent(
    small_sandbox: Sandbox, client: SpaazaClient
) -> None:
    assert client.list_tasks(limit=1) == []

    (call,) = small_sandbox.requests
    headers = {k.lower(): v for k, v in call.headers.items()}
    expected = f"Bearer {small_sandbox.token_id}:{small_sandbox.token_secret}"
    assert headers["authorization"] == expected
    assert headers["user-agent"] == "tap-spaaza-users/test"
    assert call.query.get("limit") in ("1", ["1"])


def test_rate_limit_waits_the_seconds_it_is_told_and_logs_once(
    small_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    small_sandbox.inject("status", status=429, retry_after=1, times=2, path="/tasks")
    with contextlib.closing(make_client(small_sandbox, retry_max_wait=5.0)) as api:
        started = time.monotonic()
        assert api.list_tasks() == []
        waited = time.monotonic() - started

    assert waited >= 2.0  # two 429s, one second each, no jitter on Retry-After
    assert [r.status for r in api_calls(small_sandbox, "GET", "/tasks")] == [429, 429, 200]
    assert caplog.text.count("Rate limited") == 1


def test_a_503_with_retry_after_waits_as_told(small_sandbox: Sandbox) -> None:
    small_sandbox.inject("status", status=503, retry_after=1, times=2, path="/tasks")
    with contextlib.closing(make_client(small_sandbox, retry_max_wait=5.0)) as api:
        started = time.monotonic()
        assert api.list_tasks() == []
        waited = time.monotonic() - started

    assert waited >= 2.0  # as for a 429: the server's Retry-After, not a shorter backoff
    assert [r.status for r in api_calls(small_sandbox, "GET", "/tasks")] == [503, 503, 200]


def test_rate_limit_honours_an_http_date(small_sandbox: Sandbox) -> None:
    small_sandbox.inject("status", status=429, retry_after=retry_after_date(2.0), path="/tasks")
    with contextlib.closing(make_client(small_sandbox, retry_max_wait=5.0)) as api:
        started = time.monotonic()
        api.list_tasks()
        waited = time.monotonic() - started

    assert waited >= 1.0  # HTTP dates are second-granular: 2 s ahead is at least 1 s away
    assert [r.status for r in api_calls(small_sandbox, "GET", "/tasks")] == [429, 200]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_succeed(
    small_sandbox: Sandbox, client: SpaazaClient, status: int
) -> None:
    small_sandbox.inject("status", status=status, times=2, path="/tasks")

    assert client.list_tasks() == []
    assert [r.status for r in api_calls(small_sandbox, "GET", "/tasks")] == [status, status, 200]


def test_server_errors_give_up_after_max_retries_with_a_clear_error(
    small_sandbox: Sandbox, client: SpaazaClient
) -> None:
    small_sandbox.inject("status", status=503, times=10, path="/tasks")

    with pytest.raises(SpaazaAPIError) as caught:
        client.list_tasks()

    assert len(api_calls(small_sandbox, "GET", "/tasks")) == 4  # 1 try + max_retries 3
    message = str(caught.value)
    assert "failed after 4 tries" in message
    assert "HTTP 503" in message
    assert "max_retries" in message


def test_connection_refused_is_retried_then_reported(small_sandbox: Sandbox) -> None:
    with (
        refusing_port() as port,
        contextlib.closing(make_client(small_sandbox, api_url=f"http://127.0.0.1:{port}")) as api,
        pytest.raises(
            SpaazaAPIError,
            match=r"failed after 4 tries: nothing listens at api_url http://127\.0\.0\.1",
        ),
    ):
        api.list_tasks()


def test_wrong_secret_is_a_401_naming_the_settings_without_echoing_it(
    small_sandbox: Sandbox,
) -> None:
    wrong = "wrong-secret-value-xyz"
    with (
        contextlib.closing(make_client(small_sandbox, token_secret=wrong)) as api,
        pytest.raises(SpaazaAuthError) as caught,
    ):
        api.list_tasks()

    message = str(caught.value)
    assert "access_token_id and access_token_secret" in message
    assert "401" in message
    assert wrong not in message
    assert small_sandbox.token_secret not in message
    assert len(api_calls(small_sandbox, "GET", "/tasks")) == 1  # no retry


def test_token_of_another_chain_is_a_403_naming_the_chain(small_sandbox: Sandbox) -> None:
    with (
        contextlib.closing(
            make_client(small_sandbox, chain_id=small_sandbox.other_chain_id)
        ) as api,
        pytest.raises(SpaazaForbiddenError) as caught,
    ):
        api.create_task({"chain": small_sandbox.other_chain_id, "desc": "x",
                         "target": {"action": "export", "export_index": "users",
                                    "export_format": "csv"},
                         "trigger": {"once": "2026-01-01T00:00:00Z"}})  # fmt: skip

    message = str(caught.value)
    assert f"chain {small_sandbox.other_chain_id}" in message
    assert "chain_id" in message
    assert small_sandbox.token_secret not in message
    assert len(api_calls(small_sandbox, "POST", "/tasks")) == 1


def test_unknown_task_is_a_404_saying_the_task_is_gone(
    small_sandbox: Sandbox, client: SpaazaClient
) -> None:
    with pytest.raises(SpaazaNotFoundError, match="task is gone"):
        client.get_task(987654)
    assert len(api_calls(small_sandbox, "GET", "/tasks/987654")) == 1


def test_bad_request_quotes_spaazas_error_name_and_description(client: SpaazaClient) -> None:
    body = {
        "chain": 1234,
        "desc": "x",
        "target": {"action": "export", "export_index": "people", "export_format": "csv"},
        "trigger": {"once": "2026-01-01T00:00:00Z"},
    }
    with pytest.raises(SpaazaBadRequestError) as caught:
        client.create_task(body)

    message = str(caught.value)
    assert "HTTP 400: unknown_index: unknown target.export_index 'people'" in message


def test_plain_text_and_html_error_bodies_are_handled(
    small_sandbox: Sandbox, client: SpaazaClient
) -> None:
    small_sandbox.inject("status", status=418, body="I'm a teapot", path="/tasks")
    with pytest.raises(SpaazaAPIError, match="HTTP 418: I'm a teapot"):
        client.list_tasks()
    small_sandbox.inject("status", status=418, body="<html><body>nope</body></html>", path="/tasks")
    with pytest.raises(SpaazaAPIError) as caught:
        client.list_tasks()
    assert "<html>" not in str(caught.value)


def test_sync_survives_transient_faults_on_every_api_call(
    small_sandbox: Sandbox, fast_config: dict[str, Any], sync: Callable[..., Any]
) -> None:
    small_sandbox.inject("status", status=502, method="POST", path="/tasks")
    small_sandbox.inject("status", status=429, retry_after=0, path="/tasks/1001")
    small_sandbox.inject("status", status=503, path="/tasks/1001/download_url")

    output = sync(fast_config)

    assert output.error is None
    assert len(output.records) == len(small_sandbox.users())
    assert len(small_sandbox.tasks) == 1  # a retried POST did not create a second task


def test_cli_connection_test_lists_one_task_and_creates_no_export(
    small_sandbox: Sandbox, tmp_path: Path, fast_settings: dict[str, Any]
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(small_sandbox.tap_config(**fast_settings)))

    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Connection test passed" in result.stderr
    assert [(r.method, r.path) for r in small_sandbox.requests] == [("GET", "/tasks")]
    assert small_sandbox.tasks == {}


def test_cli_connection_test_with_a_bad_secret_fails_in_one_line(
    small_sandbox: Sandbox, tmp_path: Path, fast_settings: dict[str, Any]
) -> None:
    config = small_sandbox.tap_config(**fast_settings, access_token_secret="nope-nope-nope")  # noqa: S106
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))

    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "Spaaza rejected the access token" in result.stderr
    assert "Traceback" not in result.stderr
    assert "nope-nope-nope" not in result.stderr
