"""The spaaza-sandbox command: starts, announces itself, writes the ready file, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from sandbox_client import EXPORT_TARGET

from tap_spaaza_users.sandbox.cli import parse_dialect, parse_fault

if TYPE_CHECKING:
    from pathlib import Path


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0", "--users", "30",
               "--task-base-seconds", "0", "--task-seconds-per-1k", "0",
               "--ready-file", str(ready), *args]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sandbox did not start: {process.communicate()}")
        time.sleep(0.05)
    return process, json.loads(ready.read_text(encoding="utf-8"))


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    return out


def test_command_serves_an_export_and_stops_on_sigterm(tmp_path: Path) -> None:
    process, info = _start(tmp_path)
    try:
        assert set(info) == {"url", "storage_url", "chain_id", "token_id", "token_secret"}
        assert info["url"] != info["storage_url"]
        headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
        body = {"chain": info["chain_id"], "desc": "cli", "target": EXPORT_TARGET,
                "trigger": {"once": "2000-01-01T00:00:00Z"}}  # fmt: skip
        task = requests.post(info["url"] + "/tasks", json=body, headers=headers, timeout=10).json()
        state = requests.post(
            f"{info['url']}/tasks/{task['id']}/execute", headers=headers, timeout=10
        )
        assert state.json()["code"] == "DONE"
        url = requests.get(
            f"{info['url']}/tasks/{task['id']}/download_url", headers=headers, timeout=10
        )
        assert requests.get(url.json()["url"], timeout=10).text.count("@example.com") == 30
    finally:
        out = _stop(process)
    assert info["url"] in out
    assert info["token_id"] in out
    assert info["token_secret"] in out
    assert str(info["chain_id"]) in out


def test_command_arms_faults_and_dialect(tmp_path: Path) -> None:
    process, info = _start(tmp_path, "--fault", "status:status=429,retry_after=3",
                           "--dialect", "booleans=yes_no", "--dialect", "bom=true")  # fmt: skip
    try:
        headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
        first = requests.get(info["url"] + "/tasks", headers=headers, timeout=10)
        assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
        dialect = requests.get(info["url"] + "/_sandbox/dialect", timeout=10).json()
        assert (dialect["booleans"], dialect["bom"]) == ("yes_no", True)
    finally:
        _stop(process)


def test_command_sets_bandwidth_state_code_case_and_new_faults(tmp_path: Path) -> None:
    process, info = _start(tmp_path, "--storage-bandwidth", "20000000", "--state-code-case",
                           "lower", "--fault", "answer_lost:method=POST,path=/tasks")  # fmt: skip
    try:
        options = requests.get(info["url"] + "/_sandbox/options", timeout=10).json()
        assert options["storage_bytes_per_second"] == 20_000_000
        assert options["state_code_case"] == "lower"
        headers = {"Authorization": f"Bearer {info['token_id']}:{info['token_secret']}"}
        body = {"chain": info["chain_id"], "desc": "cli", "target": EXPORT_TARGET,
                "trigger": {"once": "2099-01-01T00:00:00Z"}}  # fmt: skip
        lost = requests.post(info["url"] + "/tasks", json=body, headers=headers, timeout=10)
        assert lost.status_code == 502
        listed = requests.get(info["url"] + "/tasks", headers=headers, timeout=10).json()
        assert [t["state"]["code"] for t in listed] == ["ready"]
    finally:
        _stop(process)


def test_command_refuses_a_bad_dialect(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0",
         "--dialect", "booleans=Y_N", "--ready-file", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "booleans must be one of" in result.stderr


def test_fault_and_dialect_option_syntax() -> None:
    assert parse_fault("url_expired") == ("url_expired", {})
    assert parse_fault("status:status=503,times=2,path=/tasks/*") == (
        "status", {"status": 503, "times": 2, "path": "/tasks/*"},
    )  # fmt: skip
    assert parse_fault('task_error:{"logs": ["a, b"]}') == ("task_error", {"logs": ["a, b"]})
    assert parse_fault("malformed_rows:rows=2;5") == ("malformed_rows", {"rows": [2, 5]})
    assert parse_dialect("extra_columns=a;b") == ("extra_columns", ["a", "b"])
    assert parse_dialect("crlf=true") == ("crlf", True)
    import argparse  # noqa: PLC0415

    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault("meteor")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_dialect("bom")
