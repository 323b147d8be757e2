"""Fault parameters: a misspelt one is refused naming the right ones; every fault is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tap_spaaza_users.sandbox.cli import build_parser, main
from tap_spaaza_users.sandbox.faults import FAULT_KINDS, FAULT_PARAMS

if TYPE_CHECKING:
    from sandbox_client import ApiClient

    from tap_spaaza_users.sandbox import Sandbox

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


def test_a_misspelt_parameter_is_refused_naming_the_allowed_ones(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="drop_connection has no parameter after_byte") as caught:
        sandbox.inject("drop_connection", after_byte=5)
    assert "its parameters: after_bytes, times, method, path" in str(caught.value)
    assert sandbox.faults.armed() == []


def test_control_api_refuses_a_misspelt_parameter(api: ApiClient) -> None:
    body = {"kind": "early_close", "after_byte": 5, "framing": "close"}
    response = api.control("POST", "/faults", json=body)
    assert response.status_code == 400
    assert "after_bytes" in response.json()["error"]
    assert api.control("GET", "/faults").json() == []


@pytest.mark.parametrize("rate", [0, -5, "nan"])
def test_slow_download_needs_a_positive_rate(sandbox: Sandbox, rate: object) -> None:
    with pytest.raises(ValueError, match="bytes_per_second must be above 0"):
        sandbox.inject("slow_download", bytes_per_second=rate)


def test_every_fault_kind_has_its_parameters_listed() -> None:
    assert set(FAULT_PARAMS) == set(FAULT_KINDS)


def test_docs_list_every_fault_with_its_parameters() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for kind, params in FAULT_PARAMS.items():
        entry = re.search(
            rf"^- `{kind}`[:( ].*?(?=^- |^\n|\Z)", text, flags=re.MULTILINE | re.DOTALL
        )
        assert entry is not None, f"docs/sandbox.md has no entry for the fault {kind}"
        for param in params:
            assert f"`{param}" in entry.group(0), f"the {kind} entry does not name `{param}`"


def test_command_refuses_a_misspelt_fault_parameter(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0", "--users", "10",
         "--fault", "drop_connection:after_byte=5", "--ready-file", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "has no parameter after_byte; its parameters: after_bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_fault_in_json_keeps_commas_and_help_shows_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["--fault", 'task_error:{"logs": ["a, b"], "times": 2}'])
    assert args.fault == [("task_error", {"logs": ["a, b"], "times": 2})]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert 'KIND:{"k": v, ...} (JSON' in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("text", ["status:[1]", "status:{nope"])
def test_command_fault_json_that_is_not_an_object_is_a_usage_error(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--fault", text])
    assert exited.value.code == 2
    assert "fault status parameters" in capsys.readouterr().err


def test_storage_port_with_several_chains_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--chains", "1234,5678", "--storage-port", "9999", "--port", "0"])
    assert exited.value.code == 2
    assert "--storage-port works with one chain only" in capsys.readouterr().err
