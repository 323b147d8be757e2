"""Several chains on one port: each token sees its own chain's users and tasks, from the CLI too."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from sandbox_client import EXPORT_TARGET

from tap_spaaza_users.sandbox.chains import CHAIN_HEADER, ChainsSandbox
from tap_spaaza_users.sandbox.cli import parse_chains

if TYPE_CHECKING:
    from pathlib import Path

CHAINS = [1234, 5678, 9012]


def export(url: str, chain: dict[str, Any]) -> list[dict[str, str]]:
    """Export every user of a chain through the API with its token; return the CSV rows."""
    headers = {"Authorization": f"Bearer {chain['token_id']}:{chain['token_secret']}"}
    body = {"chain": chain["chain_id"], "desc": "chains", "target": EXPORT_TARGET,
            "trigger": {"once": "2000-01-01T00:00:00Z"}}  # fmt: skip
    task = requests.post(f"{url}/tasks", json=body, headers=headers, timeout=10).json()
    state = requests.post(f"{url}/tasks/{task['id']}/execute", headers=headers, timeout=10)
    assert state.json()["code"] == "DONE"
    link = requests.get(f"{url}/tasks/{task['id']}/download_url", headers=headers, timeout=10)
    text = requests.get(link.json()["url"], timeout=10).text
    return list(csv.DictReader(io.StringIO(text)))


def person(row: dict[str, str]) -> tuple[str, ...]:
    """Who a user is, beyond the id the chains share."""
    return (row["first_name"], row["last_name"], row["birthday"], row["phone_number"])


def test_each_token_exports_its_own_chain_of_different_users() -> None:
    with ChainsSandbox(CHAINS, users=20) as sandbox:
        info = sandbox.describe()
        assert [c["chain_id"] for c in info["chains"]] == CHAINS
        assert len({c["token_id"] for c in info["chains"]}) == len(CHAINS)
        exports = {c["chain_id"]: export(info["url"], c) for c in info["chains"]}
        for chain, rows in exports.items():
            (own,) = [s for s in sandbox.chains if s.chain_id == chain]
            assert [r["referral_code"] for r in rows] == [u["referral_code"] for u in own.users()]
            assert [r["id"] for r in rows] == [str(i) for i in range(1, 21)]
        people = [{person(r) for r in rows} for rows in exports.values()]
        assert not people[0] & people[1], "the chains hold different users (with the same ids)"
        assert all(len(s.tasks) == 1 for s in sandbox.chains), "each task in its own chain"


def test_another_chain_s_task_is_not_found_and_a_wrong_token_is_401() -> None:
    with ChainsSandbox(CHAINS[:2], users=5) as sandbox:
        first, second = sandbox.describe()["chains"]
        headers = {"Authorization": f"Bearer {first['token_id']}:{first['token_secret']}"}
        body = {"chain": first["chain_id"], "desc": "x", "target": EXPORT_TARGET,
                "trigger": {"once": "2000-01-01T00:00:00Z"}}  # fmt: skip
        task = requests.post(f"{sandbox.url}/tasks", json=body, headers=headers, timeout=10)
        other = {"Authorization": f"Bearer {second['token_id']}:{second['token_secret']}"}
        seen = requests.get(f"{sandbox.url}/tasks/{task.json()['id']}", headers=other, timeout=10)
        assert seen.status_code == 404
        wrong = {"Authorization": f"Bearer {second['token_id']}:{first['token_secret']}"}
        assert requests.get(f"{sandbox.url}/tasks", headers=wrong, timeout=10).status_code == 401
        assert requests.get(f"{sandbox.url}/tasks", timeout=10).status_code == 401


def test_the_control_header_picks_the_chain() -> None:
    with ChainsSandbox(CHAINS, users=4) as sandbox:
        added = requests.post(
            f"{sandbox.url}/_sandbox/users", json={"count": 3}, headers={CHAIN_HEADER: "5678"},
            timeout=10,
        )  # fmt: skip
        assert added.status_code == 200
        counts = {
            chain: requests.get(
                f"{sandbox.url}/_sandbox/users", headers={CHAIN_HEADER: str(chain)}, timeout=10
            ).json()["count"]
            for chain in CHAINS
        }
        assert counts == {1234: 4, 5678: 7, 9012: 4}
        assert [s.user_count() for s in sandbox.chains] == [4, 7, 4]


def test_the_command_serves_several_chains_on_one_port(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "tap_spaaza_users.sandbox", "--port", "0", "--users", "7",
               "--chains", "1234,5678,9012", "--task-base-seconds", "0",
               "--ready-file", str(ready)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.05)
        info = json.loads(ready.read_text(encoding="utf-8"))
        assert [c["chain_id"] for c in info["chains"]] == CHAINS
        assert info["chain_id"] == 1234
        for chain in info["chains"]:
            assert len(export(info["url"], chain)) == 7
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    for chain in info["chains"]:
        assert f"Chain id:               {chain['chain_id']}" in out
        assert chain["token_secret"] in out


@pytest.mark.parametrize("text", ["", "12,12", "0,5", "a,b"])
def test_chains_option_syntax(text: str) -> None:
    with pytest.raises(Exception, match="distinct chain ids"):
        parse_chains(text)
    assert parse_chains("1234") == [1234]
