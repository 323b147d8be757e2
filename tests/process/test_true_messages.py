"""Every line the tap prints is true: bounds, missing settings, SDK settings, answers, advice.

Settings are accepted at their documented edges, all missing ones are named at once, the token
is cleaned or refused by its type, the SDK's settings are known, and API answers that are not
JSON, bad download URLs and a refused connection are each said in one line.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import requests
from support.tap_cli import run_tap

from tap_spaaza_users.download import redirects
from tap_spaaza_users.errors import SpaazaConfigError
from tap_spaaza_users.settings.schema import CONFIG_SCHEMA
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {
    "api_url": "http://127.0.0.1:9",
    "chain_id": 1234,
    "access_token_id": "637fb46c-7b5c-5523-afec-b24cf10615f4",
    "access_token_secret": "sbx_b789813edfa350a08df0d35537877963",
}
#: Every number setting's documented bounds: (name, low, high).
BOUNDS = [
    (name, prop["minimum"], prop["maximum"])
    for name, prop in CONFIG_SCHEMA["properties"].items()
    if "minimum" in prop
]
EDGES = [(name, bound) for name, low, high in BOUNDS for bound in (low, high)]


def text(number: float) -> str:
    """A bound as the documentation writes it: 0.01, 3600."""
    return str(int(number)) if float(number).is_integer() else str(number)


@pytest.mark.parametrize(("name", "bound"), EDGES, ids=[f"{n}={text(b)}" for n, b in EDGES])
def test_each_bound_is_accepted_at_its_exact_edge_as_a_json_number(name: str, bound: float) -> None:
    config = json.loads(json.dumps(LOOPBACK) [:-1] + f', "{name}": {text(bound)}}}',
                        parse_float=Decimal)  # fmt: skip
    tap = TapSpaazaUsers(config=config, parse_env_config=False, setup_mapper=False)
    assert Decimal(str(tap.config[name])) == Decimal(text(bound))


@pytest.mark.parametrize(("name", "bound"), EDGES, ids=[f"{n}={text(b)}" for n, b in EDGES])
def test_each_bound_is_accepted_at_its_exact_edge_as_an_environment_string(
    name: str, bound: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**LOOPBACK, name: text(bound)}.items():
        monkeypatch.setenv(f"TAP_SPAAZA_USERS_{key.upper()}", str(value))
    tap = TapSpaazaUsers(config=None, parse_env_config=True, setup_mapper=False)
    assert Decimal(str(tap.config[name])) == Decimal(text(bound))


@pytest.mark.parametrize(("name", "low", "high"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_just_past_each_edge_is_refused(name: str, low: float, high: float) -> None:
    step = Decimal(1) if float(low).is_integer() and float(high).is_integer() else Decimal("0.001")
    for value in (Decimal(text(low)) - step / 10, Decimal(text(high)) + step):
        with pytest.raises(SpaazaConfigError, match=f"Setting {name} must be"):
            TapSpaazaUsers(config={**LOOPBACK, name: value}, parse_env_config=False)


def test_the_documented_minimums_through_the_command_line(
    small_sandbox: Sandbox, tmp_path: Path
) -> None:
    minimums = {
        "poll_interval_seconds": 0.01,
        "poll_max_interval_seconds": 0.01,
        "request_timeout_seconds": 5,
        "retry_max_wait_seconds": 0.01,
        "task_timeout_minutes": 10,
    }
    run = run_tap(tmp_path, small_sandbox.tap_config(**minimums))

    assert run.returncode == 0, run.stderr
    assert len(run.records) == len(small_sandbox.users())


def test_every_missing_required_setting_is_named_in_one_line(tmp_path: Path) -> None:
    run = run_tap(tmp_path, {"api_url": "http://127.0.0.1:9"})

    assert run.returncode == 1
    assert len(run.error_lines) == 1, run.stderr
    assert "Settings chain_id, access_token_id and access_token_secret are required" in run.error
    assert "spaaza-sandbox prints" in run.error
    assert "Traceback" not in run.stderr


def test_both_token_parts_missing_are_named_together(tmp_path: Path) -> None:
    config = {"api_url": "https://services.example.com", "chain_id": 1234}
    run = run_tap(tmp_path, config)

    assert run.returncode == 1
    assert "Settings access_token_id and access_token_secret are required" in run.error
    assert "Spaaza Console" in run.error


@pytest.mark.parametrize(
    ("value", "kind"), [(123456789, "a number"), (["a", "b"], "a list"), ({"a": 1}, "an object")]
)
def test_a_token_part_of_another_type_is_named_by_its_type_never_its_value(
    tmp_path: Path, value: object, kind: str
) -> None:
    run = run_tap(tmp_path, {**LOOPBACK, "access_token_secret": value})

    assert run.returncode == 1
    assert "Setting access_token_secret must be text" in run.error
    assert kind in run.error
    assert "is required" not in run.stderr
    assert "123456789" not in run.stderr


def test_whitespace_around_the_token_is_stripped(small_sandbox: Sandbox, tmp_path: Path) -> None:
    config = small_sandbox.tap_config(
        access_token_id=f"  {small_sandbox.token_id}\r\n",
        access_token_secret=f"{small_sandbox.token_secret}\n",
    )
    run = run_tap(tmp_path, config)

    assert run.returncode == 0, run.stderr
    assert len(run.records) == len(small_sandbox.users())


def readme_example(key: str) -> dict[str, Any]:
    """The README's (or docs/) JSON example that sets ``key``."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        if not page.exists():
            continue
        for block in re.findall(r"```json\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            example = json.loads(block)
            if key in example:
                return dict(example)
    pytest.fail(f"no JSON example with {key} in the README or docs/")


def test_the_readme_pii_example_logs_no_warning(small_sandbox: Sandbox, tmp_path: Path) -> None:
    config = small_sandbox.tap_config(**readme_example("stream_maps"))
    run = run_tap(tmp_path, {**config, "flattening_enabled": True, "flattening_max_depth": 1,
                             "stream_map_config": {"x": 1}})  # fmt: skip

    assert run.returncode == 0, run.stderr
    assert run.records
    assert all("phone_number" not in record for record in run.records)
    assert "WARNING" not in run.stderr, run.lines_with("WARNING")


def test_the_readme_batch_example_logs_no_warning(small_sandbox: Sandbox, tmp_path: Path) -> None:
    example = readme_example("batch_config")
    example["batch_config"]["storage"]["root"] = (tmp_path / "batches").as_uri()
    run = run_tap(tmp_path, small_sandbox.tap_config(**example))

    assert run.returncode == 0, run.stderr
    assert any(m["type"] == "BATCH" for m in run.messages)
    assert "WARNING" not in run.stderr, run.lines_with("WARNING")


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Sign in</body></html>", b'[{"id": 1001, "chain": 12', b""],
    ids=["html", "truncated", "empty"],
)
def test_get_tasks_answering_200_without_json_is_one_line_in_a_sync_and_in_test(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path, body: bytes
) -> None:
    small_sandbox.inject(
        "status", status=200, body=body.decode(), method="GET", path="/tasks", times=100
    )

    for args in ((), ("--test",)):
        run = run_tap(tmp_path, fast_config, *args)
        assert run.returncode == 1, run.stderr
        assert "Traceback" not in run.stderr
        assert "GET /tasks did not answer with a list of tasks (HTTP 200" in run.error
        assert run.states == []


def test_a_refused_connection_says_nothing_listens_and_asks_for_the_sandbox(
    tmp_path: Path,
) -> None:
    run = run_tap(tmp_path, {**LOOPBACK, "max_retries": 1, "retry_max_wait_seconds": 0.01})

    assert run.returncode == 1
    assert "nothing listens at api_url http://127.0.0.1:9" in run.error
    assert "is spaaza-sandbox running? Start it with `spaaza-sandbox --port 9`" in run.error
    assert "rate limiting" not in run.stderr
    assert "max_retries" not in run.error


def test_a_refused_connection_to_a_remote_host_does_not_mention_the_sandbox(
    tmp_path: Path,
) -> None:
    config = {**LOOPBACK, "api_url": "https://localhost.localdomain.invalid:9"}
    run = run_tap(tmp_path, {**config, "max_retries": 0})
    assert run.returncode == 1
    assert "spaaza-sandbox" not in run.error


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("insecure_download_url", {"host": "[::1"}),
        ("insecure_download_url", {"host": "127.0.0.1:99999"}),
    ],
    ids=["url-ipv6", "url-port"],
)
def test_a_download_url_or_redirect_that_is_not_valid_is_one_line(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    fault: str,
    params: dict[str, Any],
) -> None:
    small_sandbox.inject(fault, times=100, **params)

    run = run_tap(tmp_path, fast_config)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "whose host or port is not valid" in run.error


class Redirect:
    """What ``_open`` reads of a storage answer: a redirect to ``location``."""

    status_code = 302

    def __init__(self, location: str) -> None:
        """A redirect (the sandbox's server cannot send a Location that is not a URL)."""
        self.headers = {"Location": location}

    def close(self) -> None:
        """Nothing to close."""


class RedirectingSession(requests.Session):
    """A session whose every GET is answered with one redirect."""

    def __init__(self, location: str) -> None:
        """Redirect to ``location``."""
        super().__init__()
        self.location = location

    def get(self, url: str | bytes, **kwargs: Any) -> Any:
        """The redirect."""
        del url, kwargs
        return Redirect(self.location)


@pytest.mark.parametrize("location", ["https://[::1/x.csv", "https://example.com:99999/x"])
def test_a_redirect_that_is_not_a_valid_url_is_refused_in_one_line(location: str) -> None:
    writer = SimpleNamespace(offset=0, etag=None)
    with pytest.raises(redirects.RefusedError, match="whose host or port is not valid"):
        redirects.open_at_offset(RedirectingSession(location), "https://example.com/x", writer, 1)  # type: ignore[arg-type]
