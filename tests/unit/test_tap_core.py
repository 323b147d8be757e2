"""The tap's settings, validation and command line (no sync)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tap_spaaza_users.download.storage import is_loopback
from tap_spaaza_users.errors import SpaazaConfigError
from tap_spaaza_users.export import PollSettings
from tap_spaaza_users.settings.schema import CONFIG_SCHEMA
from tap_spaaza_users.streams import UsersStream
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from pathlib import Path


SECRET = "s3cr3t-never-shown"  # noqa: S105

VALID = {
    "api_url": "https://services-test01.spaaza.com",
    "chain_id": 1234,
    "access_token_id": "0b6f4a38-33c6-4a46-9e5e-2f0e2c6e7b11",
    "access_token_secret": SECRET,
}


def run_cli(
    *args: str, config: dict[str, Any] | None = None, tmp_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tap_spaaza_users", *args]
    if config is not None:
        assert tmp_path is not None
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        argv += ["--config", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_settings_are_declared_with_titles_descriptions_and_secrets() -> None:
    properties = CONFIG_SCHEMA["properties"]
    for name in (
        "api_url",
        "chain_id",
        "access_token_id",
        "access_token_secret",
        "start_date",
        "lookback_minutes",
        "poll_interval_seconds",
        "poll_max_interval_seconds",
        "task_timeout_minutes",
        "request_timeout_seconds",
        "user_agent",
        "on_invalid_row",
        "max_retries",
    ):
        assert properties[name].get("title"), name
        assert properties[name].get("description"), name
    assert properties["access_token_secret"]["secret"] is True
    assert properties["access_token_id"]["secret"] is True
    assert set(CONFIG_SCHEMA["required"]) == {"chain_id", "access_token_id", "access_token_secret"}
    assert properties["api_url"]["default"] == "https://services-prod.spaaza.com"
    assert properties["lookback_minutes"]["default"] == 60
    assert properties["poll_interval_seconds"]["default"] == 5
    assert properties["poll_max_interval_seconds"]["default"] == 60
    assert properties["task_timeout_minutes"]["default"] == 180
    assert properties["max_retries"]["default"] == 5
    assert properties["on_invalid_row"]["default"] == "fail"


def test_valid_settings_build_a_tap_with_the_users_stream() -> None:
    tap = TapSpaazaUsers(config=VALID, parse_env_config=False)
    stream = tap.streams["users"]
    assert stream.primary_keys == ["id"]
    assert stream.replication_key == "created_date"
    assert stream.is_sorted is False


def test_typed_settings_are_built_once_and_keep_the_token_out_of_their_repr() -> None:
    config = {**VALID, "start_date": "2024-01-31T00:00:00Z", "backfill_window_days": 0}
    tap = TapSpaazaUsers(config=config, parse_env_config=False)

    settings = tap.settings

    assert settings is tap.settings  # typed once
    assert settings.chain_id == 1234
    assert settings.start_date == dt.datetime(2024, 1, 31, tzinfo=dt.timezone.utc)
    assert settings.backfill_window_days is None  # 0: off
    assert SECRET not in repr(settings)
    assert str(VALID["access_token_id"]) not in repr(settings)


def test_settings_left_out_reach_the_code_as_the_schema_defaults() -> None:
    defaults = {
        name: prop["default"]
        for name, prop in CONFIG_SCHEMA["properties"].items()
        if "default" in prop
    }
    assert {"lookback_minutes", "retry_max_wait_seconds", "on_invalid_row"} <= set(defaults)
    tap = TapSpaazaUsers(config=VALID, parse_env_config=False)
    assert {name: tap.config[name] for name in defaults} == {
        **defaults,
        "api_url": VALID["api_url"],
    }
    stream = tap.streams["users"]
    assert isinstance(stream, UsersStream)
    with contextlib.closing(tap.make_client()) as client:
        settings = client.settings
    assert settings.timeout == defaults["request_timeout_seconds"]
    assert settings.retry_max_wait == defaults["retry_max_wait_seconds"]
    poll = PollSettings.from_settings(tap.settings)
    assert poll.timeout == defaults["task_timeout_minutes"] * 60


@pytest.mark.parametrize(
    ("override", "setting", "hint"),
    [
        ({"access_token_secret": "  "}, "access_token_secret", "AccessToken"),
        ({"access_token_id": ""}, "access_token_id", "AccessToken"),
        ({"chain_id": 0}, "chain_id", "positive integer"),
        ({"start_date": "last tuesday"}, "start_date", "ISO 8601"),
        ({"api_url": "http://services-prod.spaaza.com"}, "api_url", "https"),
        ({"api_url": "ftp://example.org"}, "api_url", "URL like"),
        ({"api_url": f"https://me:{SECRET}@example.org"}, "api_url", "credentials"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds", "above 0"),
        ({"lookback_minutes": -5}, "lookback_minutes", "at least 0"),
        (
            {"segment_rules": [{"field_name": "x", "field_type": "date", "operator": "is_soon"}]},
            "segment_rules[0].operator",
            "is_after_date",
        ),
        (
            {"segment_rules": [{"field_name": "x", "field_type": "date", "operator": "is_date"}]},
            "segment_rules[0]",
            "needs value",
        ),
        (
            {
                "segment_rules": [
                    {"field_name": "gender", "field_type": "keyword", "operator": "is_after_date"}
                ]
            },
            "segment_rules[0].operator",
            "does not apply",
        ),
    ],
)
def test_invalid_settings_fail_naming_the_setting_and_the_fix(
    override: dict[str, Any], setting: str, hint: str
) -> None:
    with pytest.raises(SpaazaConfigError) as caught:
        TapSpaazaUsers(config={**VALID, **override}, parse_env_config=False)
    message = str(caught.value)
    assert setting in message
    assert hint in message
    assert SECRET not in message


#: The tap's number settings (the SDK's own, such as flattening_max_depth, have no bounds).
NUMBER_SETTINGS = {
    name: prop for name, prop in CONFIG_SCHEMA["properties"].items() if "minimum" in prop
}


@pytest.mark.parametrize("name", sorted(NUMBER_SETTINGS))
def test_every_number_setting_is_held_to_its_bounds_with_a_clear_message(name: str) -> None:
    prop = NUMBER_SETTINGS[name]
    low, high = prop["minimum"], prop["maximum"]
    sandbox = {**VALID, "api_url": "http://127.0.0.1:9"}  # loopback: the poll floor is lower

    for fine in (low, high):
        TapSpaazaUsers(config={**sandbox, name: fine}, parse_env_config=False)
    for absurd in (high * 10, high + 1):
        with pytest.raises(SpaazaConfigError) as caught:
            TapSpaazaUsers(config={**sandbox, name: absurd}, parse_env_config=False)
        assert str(caught.value).startswith(f"Setting {name} must be from ")
        assert SECRET not in str(caught.value)


@pytest.mark.parametrize("name", ["poll_interval_seconds", "poll_max_interval_seconds"])
def test_polling_faster_than_once_a_second_is_for_a_loopback_sandbox_only(name: str) -> None:
    TapSpaazaUsers(config={**VALID, "api_url": "http://localhost:9", name: 0.05})
    TapSpaazaUsers(config={**VALID, name: 1})
    with pytest.raises(SpaazaConfigError, match=f"Setting {name} must be at least 1 second"):
        TapSpaazaUsers(config={**VALID, name: 0.5}, parse_env_config=False)


def test_a_start_date_in_the_future_is_an_error_a_few_minutes_of_clock_skew_are_not() -> None:
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    TapSpaazaUsers(config={**VALID, "start_date": soon.isoformat()}, parse_env_config=False)
    with pytest.raises(SpaazaConfigError, match="Setting start_date is in the future"):
        TapSpaazaUsers(
            config={**VALID, "start_date": (soon + dt.timedelta(hours=1)).isoformat()},
            parse_env_config=False,
        )


LOOPBACK_URLS = (
    "http://127.0.0.1:8080",
    "http://127.8.9.10",
    "http://LocalHost:1",
    "http://[::1]:9",
)
OTHER_HTTP_URLS = (
    "http://128.0.0.1",
    "http://[::2]",
    "http://localhost.example.org",
    "http://api.localhost",
    "http://0.0.0.0:8765",
)


def test_plain_http_is_allowed_for_loopback_hosts_only() -> None:
    for url in LOOPBACK_URLS:
        tap = TapSpaazaUsers(config={**VALID, "api_url": url}, parse_env_config=False)
        assert tap.config["api_url"] == url
    for url in OTHER_HTTP_URLS:
        with pytest.raises(SpaazaConfigError, match="must use https"):
            TapSpaazaUsers(config={**VALID, "api_url": url}, parse_env_config=False)


def is_https_or_loopback(url: str) -> bool:
    """Whether the download fetches a storage URL: https, or plain http to a loopback host."""
    parts = urlsplit(url)
    return parts.scheme == "https" or is_loopback(parts.hostname or "")


def test_api_url_and_storage_urls_agree_on_what_loopback_is() -> None:
    assert all(is_https_or_loopback(url) for url in LOOPBACK_URLS)
    assert not any(is_https_or_loopback(url) for url in OTHER_HTTP_URLS)
    assert is_https_or_loopback("https://storage.example.org/f.csv?sig=x")


def test_schema_types_are_enforced_too() -> None:
    with pytest.raises(SpaazaConfigError, match="chain_id must be a positive integer"):
        TapSpaazaUsers(config={**VALID, "chain_id": "12x"}, parse_env_config=False)


def test_cli_reports_invalid_settings_in_one_line_without_traceback(tmp_path: Path) -> None:
    # A non-loopback http URL: the tap must stop before any connection is tried.
    config = {**VALID, "api_url": "http://203.0.113.9"}
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Setting api_url must use https" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert result.stdout == ""


def test_cli_version_about_and_discover(tmp_path: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0
    assert "tap-spaaza-users v" in version.stdout

    about = run_cli("--about", "--format=json")
    assert about.returncode == 0
    info = json.loads(about.stdout)
    assert info["name"] == "tap-spaaza-users"
    assert "users" in info["description"]
    assert "access_token_secret" in info["settings"]["properties"]

    markdown = run_cli("--about", "--format=markdown")
    assert markdown.returncode == 0
    assert "| access_token_secret | True |" in markdown.stdout
    assert "| lookback_minutes | False | 60 |" in markdown.stdout

    discover = run_cli("--discover", config=VALID, tmp_path=tmp_path)
    assert discover.returncode == 0
    catalog = json.loads(discover.stdout)
    (entry,) = catalog["streams"]
    assert entry["tap_stream_id"] == "users"
    assert entry["key_properties"] == ["id"]
    assert entry["replication_key"] == "created_date"
    assert entry["schema"]["properties"]["is_employee"]["type"] == ["boolean", "null"]
    assert SECRET not in discover.stdout + discover.stderr
