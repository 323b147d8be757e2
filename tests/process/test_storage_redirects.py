"""Storage redirects, through the tap's command line against the sandbox's ``redirect`` fault.

The tap follows only https redirects and forwards nothing; the sandbox's storage speaks plain
http, so every redirect it sends is one the tap must refuse, in one line, keeping its state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import run_tap

if TYPE_CHECKING:
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

ELSEWHERE = "http://storage.example.com/spaaza-exports/User_Export.csv?X-Amz-Signature=f00d"


@pytest.mark.parametrize(
    "params",
    [{}, {"status": 307}, {"status": 301, "location": ELSEWHERE}],
    ids=["same-url-on-http", "307", "301-to-another-host"],
)
def test_a_redirect_to_plain_http_is_refused_in_one_line_keeping_the_state(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    params: dict[str, Any],
) -> None:
    first = run_tap(tmp_path, fast_config)
    assert first.returncode == 0, first.stderr
    state = first.states[-1]
    small_sandbox.add_users(3)
    small_sandbox.request_log.clear()
    small_sandbox.inject("redirect", **params)

    run = run_tap(tmp_path, fast_config, state=state)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.records == []
    kept = state["bookmarks"]["users"]["replication_key_value"]
    assert {s["bookmarks"]["users"]["replication_key_value"] for s in run.states} == {kept}
    assert "in_flight_task" in run.states[-1]["bookmarks"]["users"], "the task is kept"
    assert "Export download failed: storage redirected to a non-https URL" in run.error
    assert "refusing to follow" in run.error
    assert "X-Amz-Signature=" not in run.stderr
    assert "f00d" not in run.stderr
    storage = [r.status for r in small_sandbox.requests if r.server == "storage"]
    assert storage == [params.get("status", 302)]  # never followed: the next GET would work
