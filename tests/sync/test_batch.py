"""BATCH output: files hold what RECORD messages would, and STATE follows the files."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import fsspec
import pytest
from support.tap_cli import captured_stdout

from tap_spaaza_users.emission import WindowEmitter
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

GZIP_MAGIC = b"\x1f\x8b"
MAPS = {
    "users": {"email_hash": "md5(username)", "username": None},
    "users_copy": {"__source__": "users", "__filter__": "id % 2 == 0"},
}


def batch_config(root: Path, compression: str = "gzip", size: int = 50) -> dict[str, Any]:
    return {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": root.as_uri()},
        "batch_size": size,
    }


def run(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run a sync in-process; return its messages (fractions as Decimal)."""
    tap = TapSpaazaUsers(config=config, state=state, catalog=catalog, parse_env_config=False)
    with captured_stdout() as written:
        tap.sync_all()
        text = written()
    return [json.loads(line, parse_float=decimal.Decimal) for line in text.splitlines()]


def batch_records(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Read the records of a BATCH message's files."""
    records = []
    for url in message["manifest"]:
        data = Path(unquote(urlparse(url).path)).read_bytes()
        if message["encoding"]["compression"] == "gzip":
            data = gzip.decompress(data)
        records += [json.loads(line, parse_float=decimal.Decimal) for line in data.splitlines()]
    return records


def by_stream(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records per stream alias, from RECORD messages and BATCH files alike."""
    found: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            found.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "BATCH":
            found.setdefault(message["stream"], []).extend(batch_records(message))
    return found


def final_bookmark(messages: list[dict[str, Any]]) -> str:
    (*_, last) = (m for m in messages if m["type"] == "STATE")
    return str(last["value"]["bookmarks"]["users"]["replication_key_value"])


def deselecting(config: dict[str, Any], *names: str) -> dict[str, Any]:
    """The discovered catalog with the users stream selected and ``names`` deselected."""
    catalog = TapSpaazaUsers(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"][0]["metadata"]:
        breadcrumb = tuple(entry["breadcrumb"])
        if breadcrumb == ():
            entry["metadata"]["selected"] = True
        elif breadcrumb[-1] in names:
            entry["metadata"]["selected"] = False
    return catalog


def test_batch_sync_then_record_sync_loses_and_duplicates_nothing(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    config = {**fast_config, "lookback_minutes": 0}
    first = run({**config, "batch_config": batch_config(tmp_path)})

    kinds = [m["type"] for m in first]
    assert "RECORD" not in kinds
    assert kinds.count("BATCH") == 3  # 120 users, 50 per file
    last_batch = max(i for i, kind in enumerate(kinds) if kind == "BATCH")
    assert "STATE" in kinds[last_batch:]
    batched = by_stream(first)["users"]
    batched_ids = [record["id"] for record in batched]
    assert len(batched_ids) == len(set(batched_ids)) == len(small_sandbox.users())
    bookmark = final_bookmark(first)
    assert bookmark == max(record["created_date"] for record in batched)

    created = dt.datetime.fromisoformat(bookmark) + dt.timedelta(minutes=5)
    new_ids = set(small_sandbox.add_users(4, created_date=created))
    state = next(m for m in reversed(first) if m["type"] == "STATE")["value"]
    second = run(config, state=state)

    records = by_stream(second)["users"]
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids))
    at_bookmark = {record["id"] for record in batched if record["created_date"] == bookmark}
    assert set(ids) == new_ids | at_bookmark  # the window starts at the bookmark, inclusive
    everyone = {int(row["id"]) for row in small_sandbox.users()}
    assert set(batched_ids) | set(ids) == everyone


def test_batch_files_apply_selection_and_stream_maps_like_records(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    config = {**fast_config, "stream_maps": MAPS}
    catalog = deselecting(config, "phone_number", "birthday")
    records = by_stream(run(config, catalog=catalog))
    batched = by_stream(run({**config, "batch_config": batch_config(tmp_path)}, catalog=catalog))

    assert set(batched) == set(records) == {"users", "users_copy"}
    for alias in records:
        assert {r["id"]: r for r in batched[alias]} == {r["id"]: r for r in records[alias]}
    user = batched["users"][0]
    assert "email_hash" in user
    assert not {"username", "phone_number", "birthday"} & set(user)
    assert {r["id"] % 2 for r in batched["users_copy"]} == {0}
    assert len(batched["users"]) == len(small_sandbox.users())


def test_compression_none_gives_plain_json_lines_files(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    messages = run({**fast_config, "batch_config": batch_config(tmp_path, "none", 1000)})

    (batch,) = [m for m in messages if m["type"] == "BATCH"]
    assert batch["encoding"] == {"format": "jsonl", "compression": "none"}
    (url,) = batch["manifest"]
    path = Path(unquote(urlparse(url).path))
    assert path.suffix == ".jsonl"
    data = path.read_bytes()
    assert not data.startswith(GZIP_MAGIC)
    assert len(data.splitlines()) == len(small_sandbox.users())
    assert final_bookmark(messages) == max(r["created_date"] for r in batch_records(batch))


def test_gzip_batch_files_are_gzip_and_every_decimal_digit_is_kept(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(users=5, seed=3)
    user_id = sandbox.add_users(1)[0]
    sandbox.update_user(user_id, average_basket_value="12345678901234567.123456789")
    messages = run({**sandbox.tap_config(), "batch_config": batch_config(tmp_path)})

    (batch,) = [m for m in messages if m["type"] == "BATCH"]
    (url,) = batch["manifest"]
    assert Path(unquote(urlparse(url).path)).read_bytes().startswith(GZIP_MAGIC)
    user = next(r for r in batch_records(batch) if r["id"] == user_id)
    assert user["average_basket_value"] == decimal.Decimal("12345678901234567.123456789")


def test_batch_files_go_to_any_fsspec_url(
    small_sandbox: Sandbox, fast_config: dict[str, Any]
) -> None:
    config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": "memory://spaaza-batches", "prefix": "run-"},
    }
    messages = run({**fast_config, "batch_config": config})

    (batch,) = [m for m in messages if m["type"] == "BATCH"]
    (url,) = batch["manifest"]
    assert url.startswith("memory://")
    assert url.rsplit("/", 1)[1].startswith("run-")
    with fsspec.open(url, "rb") as file:
        data = gzip.decompress(file.read())
    ids = {json.loads(line)["id"] for line in data.splitlines()}
    assert ids == {int(row["id"]) for row in small_sandbox.users()}


def test_a_stop_signal_after_the_bookmark_moved_but_before_the_batch_message_loses_nothing(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = {**fast_config, "lookback_minutes": 0, "batch_config": batch_config(tmp_path)}
    tap = TapSpaazaUsers(config=config, parse_env_config=False)
    close = WindowEmitter.close

    def close_then_stop(emitter: WindowEmitter, task_id: int, window: Any) -> None:
        close(emitter, task_id, window)  # the bookmark moves in the state
        tap._handle_termination(signal.SIGTERM, None)  # as a SIGTERM arriving right here

    monkeypatch.setattr(WindowEmitter, "close", close_then_stop)
    with captured_stdout() as written, pytest.raises(SystemExit) as stopped:
        tap.sync_all()
    messages = [json.loads(line) for line in written().splitlines()]
    monkeypatch.undo()

    assert stopped.value.code == 143
    assert [m for m in messages if m["type"] == "BATCH"] == []  # one window, one file
    assert list(tmp_path.iterdir()) == []  # the file no message announced is removed
    (*_, last) = (m["value"] for m in messages if m["type"] == "STATE")
    rerun = by_stream(run(config, state=last))["users"]
    assert {record["id"] for record in rerun} == {int(row["id"]) for row in small_sandbox.users()}
