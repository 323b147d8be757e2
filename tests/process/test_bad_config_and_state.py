"""Bad config and state files through the command line: one ERROR line, exit 1, no request."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import run_tap

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

Settings = dict[str, Any]
TOMORROW = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()


def users_state(**values: object) -> dict[str, Any]:
    """A state whose users stream holds ``values``."""
    return {"bookmarks": {"users": values}}


def without(config: Settings, name: str) -> Settings:
    """The settings without one of them."""
    return {key: value for key, value in config.items() if key != name}


#: (config from the sandbox's settings, state or None, what the one ERROR line says).
BAD_INPUTS: dict[str, tuple[Callable[[Settings], Any], Any, str]] = {
    "empty config": (lambda _: "", None, "config.json is empty: write the settings as"),
    "config not JSON": (
        lambda _: "chain_id = 1234\n",
        None,
        "config.json is not JSON (line 1, column 1: Expecting value)",
    ),
    "config a list": (lambda c: [c], None, "config.json must hold a JSON object, not a list"),
    "empty state": (lambda c: c, "", "state.json is empty: give the JSON object"),
    "state not JSON": (
        lambda c: c,
        "{'bookmarks': {}}",
        "state.json is not JSON (line 1, column 2",
    ),
    "state a list": (lambda c: c, "[]", "state.json must hold a JSON object, not a list"),
    "binary state": (lambda c: c, b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "state.json is not text"),
    "bookmark not a date": (
        lambda c: c,
        users_state(replication_key="created_date", replication_key_value="last week"),
        "State bookmarks.users.replication_key_value must be an ISO 8601 date-time",
    ),
    "bookmark a number": (
        lambda c: c,
        users_state(replication_key_value=1706659200),
        (
            "State bookmarks.users.replication_key_value must be an ISO 8601 date-time like "
            "2024-01-31T00:00:00+00:00, not 1706659200."
        ),
    ),
    "bookmark in the future": (
        lambda c: c,
        users_state(replication_key="created_date", replication_key_value=TOMORROW),
        "State bookmarks.users.replication_key_value is in the future",
    ),
    "in-flight task a number": (
        lambda c: c,
        users_state(in_flight_task=1001),
        "State bookmarks.users.in_flight_task must be an object like",
    ),
    "in-flight task without id": (
        lambda c: c,
        users_state(in_flight_task={"task": 1001, "key": "3f2a9c1b7e4d5a60"}),
        "State bookmarks.users.in_flight_task must be an object like",
    ),
    "in-flight creation not a date": (
        lambda c: c,
        users_state(in_flight_task={"id": 1001, "key": "3f2a9c1b7e4d5a60", "created_at": "soon"}),
        "State bookmarks.users.in_flight_task.created_at must be an ISO 8601 date-time",
    ),
    "stream state a list": (
        lambda c: c,
        {"bookmarks": {"users": []}},
        "State bookmarks.users must be an object, not a list",
    ),
    "lookback 1e10": (
        lambda c: {**c, "lookback_minutes": 1e10},
        None,
        "Setting lookback_minutes must be from 0 to 10519200, not 10000000000.",
    ),
    "backfill 1e8": (
        lambda c: {**c, "backfill_window_days": 1e8},
        None,
        "Setting backfill_window_days must be from 0 to 7305, not 100000000.",
    ),
    "request timeout 1e20": (
        lambda c: {**c, "request_timeout_seconds": 1e20},
        None,
        "Setting request_timeout_seconds must be from 0.1 to 600",
    ),
    "max retries 1e6": (
        lambda c: {**c, "max_retries": 1e6},
        None,
        "Setting max_retries must be from 0 to 20",
    ),
    "fractional lookback": (
        lambda c: {**c, "lookback_minutes": 2.5},
        None,
        "Setting lookback_minutes must be a whole number",
    ),
    "poll 1e-9 on the sandbox": (
        lambda c: {**c, "poll_interval_seconds": 1e-9},
        None,
        "Setting poll_interval_seconds must be from 0.01 to 3600",
    ),
    "poll 0.5 against Spaaza": (
        lambda c: {**c, "poll_interval_seconds": 0.5, "api_url": "https://services.example.com"},
        None,
        "Setting poll_interval_seconds must be at least 1 second to spare the Spaaza API",
    ),
    "api_url port left as ${PORT}": (
        lambda c: {**c, "api_url": "http://127.0.0.1:${PORT}"},
        None,
        (
            "Setting api_url is not a valid URL: the port in '127.0.0.1:${PORT}' is not a "
            "number from 0 to 65535 (an environment variable left unexpanded?); give a URL like "
            "https://services-prod.spaaza.com, or http://127.0.0.1:<port> for a local sandbox."
        ),
    ),
    "api_url port a word": (
        lambda c: {**c, "api_url": "https://services.example.com:notaport"},
        None,
        "Setting api_url is not a valid URL: the port in 'services.example.com:notaport' is not",
    ),
    "api_url port out of range": (
        lambda c: {**c, "api_url": "https://services.example.com:99999"},
        None,
        "the port in 'services.example.com:99999' is not a number from 0 to 65535; give a URL",
    ),
    "api_url host with a space": (
        lambda c: {**c, "api_url": "https://exa mple.com"},
        None,
        "Setting api_url is not a valid URL: the host in 'exa mple.com' is not a host name;",
    ),
    "api_url host left as ${HOST}": (
        lambda c: {**c, "api_url": "https://${HOST}/"},
        None,
        "the host in '${HOST}' is not a host name (an environment variable left unexpanded?)",
    ),
    "api_url with an unclosed IPv6 host": (
        lambda c: {**c, "api_url": "http://[::1:8080"},
        None,
        "Setting api_url is not a valid URL: the host in '[::1:8080' is not a host name;",
    ),
    "start_date in the future": (
        lambda c: {**c, "start_date": TOMORROW},
        None,
        "Setting start_date is in the future",
    ),
    "chain_id missing": (
        lambda c: without(c, "chain_id"),
        None,
        "Setting chain_id is required",
    ),
    "token id missing against the sandbox": (
        lambda c: without(c, "access_token_id"),
        None,
        (
            "Setting access_token_id is required: api_url is a local sandbox, whose demo token "
            "spaaza-sandbox prints when it starts (and writes to its --ready-file as token_id"
        ),
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_before_any_request(
    small_sandbox: Sandbox, fast_config: Settings, tmp_path: Path, case: str
) -> None:
    make_config, state, expected = BAD_INPUTS[case]

    run = run_tap(tmp_path, make_config(fast_config), state=state)

    assert run.returncode == 1, run.stderr
    assert small_sandbox.requests == []
    assert "Traceback" not in run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert expected in run.error
    assert run.stdout == ""
    assert small_sandbox.token_secret not in run.stderr


def test_a_missing_token_against_spaaza_points_at_spaaza_console(
    fast_config: Settings, tmp_path: Path
) -> None:
    config = {**without(fast_config, "access_token_id"), "api_url": "https://services.example.com"}

    run = run_tap(tmp_path, config)

    assert run.returncode == 1
    expected = "Setting access_token_id is required: copy it from the AccessToken in Spaaza Console"
    assert expected in run.error


def test_misspelt_settings_are_warned_about_naming_the_closest_known_one(
    small_sandbox: Sandbox, fast_config: Settings, tmp_path: Path
) -> None:
    config = {**fast_config, "chain_idd": 1234, "start_dat": "2024-01-01", "zzz": 1}

    run = run_tap(tmp_path, config)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == len(small_sandbox.users())
    warnings = run.lines_with("Unknown setting")
    assert len(warnings) == 3
    assert all("WARNING" in line for line in warnings)
    assert "Unknown setting 'chain_idd' is ignored; did you mean 'chain_id'?" in warnings[0]
    assert "Unknown setting 'start_dat' is ignored; did you mean 'start_date'?" in warnings[1]
    assert warnings[2].endswith("Unknown setting 'zzz' is ignored")


def test_a_misspelt_required_setting_is_warned_about_before_the_error(
    small_sandbox: Sandbox, fast_config: Settings, tmp_path: Path
) -> None:
    config = {**without(fast_config, "chain_id"), "chain_idd": 1234}

    run = run_tap(tmp_path, config)

    assert run.returncode == 1
    (warning,) = run.lines_with("Unknown setting")
    assert "did you mean 'chain_id'?" in warning
    assert "Setting chain_id is required" in run.error
    assert small_sandbox.requests == []


def test_help_says_what_test_does_here(fast_config: Settings, tmp_path: Path) -> None:
    run = run_tap(tmp_path, fast_config, "--help")

    assert run.returncode == 0
    text = " ".join(run.stdout.split())
    assert "single record" not in text
    assert "check the connection without syncing" in text
    assert "no export task is created" in text
