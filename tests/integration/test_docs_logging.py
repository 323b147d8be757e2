"""docs/logging.md runs as written: metrics_log_level, Meltano's JSON log, the SDK's JSON format."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
from typing import TYPE_CHECKING, Any

import yaml
from support.docs_pages import command_lines, doc_block, doc_markers, untested_blocks

from tap_spaaza_users.export import UsersExport
from tap_spaaza_users.sandbox import Sandbox
from tap_spaaza_users.tap import TapSpaazaUsers

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from .conftest import Meltano

PAGE = "logging.md"
START_DATE = "2000-01-01T00:00:00Z"


def documented_fields() -> dict[str, set[str]]:
    """The page's table: a pattern of each message (``N`` a number, ``...`` any text) → fields."""
    text = (PROJECT_ROOT / "docs" / PAGE).read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)`[^|]* \| (`.*`.*) \|$", text, flags=re.MULTILINE)
    patterns = {}
    for message, fields in rows:
        pattern = re.escape(message).replace(re.escape("..."), ".*")
        pattern = re.sub(r"\bN\b", r"\\d+", pattern.replace(re.escape(" / "), "|"))
        if "|" in pattern:  # the state change: exactly one of the states
            head, _, states = pattern.rpartition(re.escape(" is "))
            pattern = f"{head} is ({states})$"
        patterns[pattern] = set(re.findall(r"`(\w+)`", fields))
    return patterns


def test_every_block_of_the_page_is_tested() -> None:
    assert untested_blocks(PAGE) == 0
    assert doc_markers(PAGE) == [
        "logging-meltano-yml",
        "logging-meltano-json",
        "logging-sdk-config",
        "logging-sdk-run",
        "logging-heartbeat",
    ]


def test_the_meltano_yml_block_sets_a_setting_the_extractor_offers() -> None:
    block = yaml.safe_load(doc_block(PAGE, "logging-meltano-yml"))
    (plugin,) = block["plugins"]["extractors"]
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text(encoding="utf-8"))
    declared = {p["name"]: p for p in project["plugins"]["extractors"]}
    settings = {s["name"]: s for s in declared[plugin["name"]]["settings"]}
    for name, value in plugin["config"].items():
        assert value in [o["value"] for o in settings[name]["options"]]
        assert value in TapSpaazaUsers.config_jsonschema["properties"][name]["enum"]


def test_meltano_json_log_carries_the_documented_fields_and_no_poll_metrics(
    meltano: Meltano,
) -> None:
    lines = command_lines(doc_block(PAGE, "logging-meltano-json"))
    with Sandbox(users=40, seed=3, task_base_seconds=1.0) as sandbox:
        meltano.use_sandbox(sandbox, start_date=START_DATE)
        for line in lines[:-1]:
            name, _, value = shlex.split(line)[1].partition("=")
            meltano.env[name] = value
        result = meltano(*shlex.split(lines[-1])[1:])
        polls = [r for r in sandbox.requests if re.fullmatch(r"/tasks/\d+", r.path)]

    events = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    tap = [e for e in events if e.get("string_id") == "tap-spaaza-users"]
    metrics = [e["metric_info"] for e in tap if e.get("event") == "METRIC"]
    assert len(polls) >= 3, "the export was polled"
    assert not [m for m in metrics if m["tags"].get("endpoint") == "/tasks/{id}"]
    assert {"record_count", "sync_duration"} <= {m["metric"] for m in metrics}
    seen = 0
    for message, fields in documented_fields().items():
        found = [e for e in tap if re.match(message, str(e.get("event", "")))]
        for event in found:
            optional = {"usual_seconds", "window_end", "total_bytes"}
            assert fields - optional <= set(event), (message, event)
        seen += bool(found)
    assert seen >= 5, "created, state changes, downloaded, emitted, delivered"


def test_the_sdk_logging_config_gives_json_lines_with_extra_fields(tmp_path: Path) -> None:
    (tmp_path / "logging.yml").write_text(doc_block(PAGE, "logging-sdk-config"), encoding="utf-8")
    (command,) = command_lines(doc_block(PAGE, "logging-sdk-run"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    env["PATH"] = f"{PROJECT_ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    with Sandbox(users=25, seed=2) as sandbox:
        config = sandbox.tap_config(start_date=START_DATE)
        (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert result.returncode == 0, result.stderr[-3000:]
    messages = [json.loads(x) for x in (tmp_path / "messages.jsonl").read_text().splitlines()]
    assert len([m for m in messages if m["type"] == "RECORD"]) == 25
    logged = [json.loads(x) for x in result.stderr.splitlines()]
    (emitted,) = [x["extra"] for x in logged if x["message"].startswith("Emitted 25 users")]
    assert emitted["rows"] == 25
    assert emitted["window_start"] == "2000-01-01T00:00:00+00:00"
    assert {"task_id", "seconds", "rows_per_second"} <= set(emitted)


def test_the_heartbeat_shown_is_the_one_a_second_sync_logs(
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = doc_block(PAGE, "logging-heartbeat").strip()
    sandbox = sandbox_factory(users=30, seed=6, task_base_seconds=1.0)
    config = sandbox.tap_config(start_date=START_DATE, poll_interval_seconds=0.05)
    first = sync(config)
    sandbox.add_users(2)
    monkeypatch.setattr(UsersExport, "heartbeat_seconds", 0.3)

    with caplog.at_level(logging.INFO):
        second = sync(config, state=first.final_state)

    assert first.error is None
    assert second.error is None
    beats = [r.getMessage() for r in caplog.records if "usually" in r.getMessage()]
    assert beats

    def shape(line: str) -> str:
        return re.sub(r"\d+", "N", line.replace("last export ", "last N exports "))

    assert shape(beats[0]) == shape(shown)
