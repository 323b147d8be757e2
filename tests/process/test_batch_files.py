"""BATCH files are personal data: proven storage, no partial file left, deleted once loaded."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.tap_cli import CliRun, run_tap

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def batch(root: Path | str, compression: str = "gzip") -> dict[str, Any]:
    """A ``batch_config`` setting writing into ``root``."""
    url = root.as_uri() if isinstance(root, Path) else root
    return {
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": compression},
            "storage": {"root": url, "prefix": "users-"},
            "batch_size": 1000,
        }
    }


def files_in(folder: Path) -> set[str]:
    """The file URLs in ``folder``."""
    return {path.as_uri() for path in folder.iterdir()} if folder.exists() else set()


def named(run: CliRun) -> set[str]:
    """The BATCH files the run's last STATE names as delivered."""
    return set(run.states[-1]["bookmarks"]["users"].get("delivered_batch_files", []))


def announced(run: CliRun) -> set[str]:
    """The BATCH files the run announced."""
    return {url for m in run.messages if m["type"] == "BATCH" for url in m["manifest"]}


def test_the_next_sync_deletes_the_files_its_state_proves_loaded(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "batches"
    config = {**fast_config, **batch(folder)}

    first = run_tap(tmp_path, config)
    assert first.returncode == 0, first.stderr
    assert announced(first)
    assert named(first) == announced(first) == files_in(folder)

    small_sandbox.add_users(5)
    second = run_tap(tmp_path, config, state=first.states[-1])

    assert second.returncode == 0, second.stderr
    assert announced(second)
    assert files_in(folder) == announced(second) == named(second)  # the first's files are gone
    assert "Deleted 1 BATCH file(s) the previous sync's state proves loaded" in second.stderr


def test_keep_batch_files_keeps_them(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "batches"
    config = {**fast_config, **batch(folder), "keep_batch_files": True}

    first = run_tap(tmp_path, config)
    small_sandbox.add_users(5)
    second = run_tap(tmp_path, config, state=first.states[-1])

    assert second.returncode == 0, second.stderr
    assert files_in(folder) == announced(first) | announced(second)


def test_an_s3_root_without_s3fs_is_one_line_before_any_request(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    run = run_tap(tmp_path, {**fast_config, **batch("s3://my-bucket/spaaza")})

    assert run.returncode == 1
    assert small_sandbox.requests == []
    assert "Traceback" not in run.stderr
    assert "install the tap with its s3 extra" in run.error
    assert "tap-spaaza-users[s3]" in run.error
    assert '\ns3 = ["singer-sdk[s3]' in (ROOT / "pyproject.toml").read_text()  # the extra named


def test_a_root_that_cannot_be_written_is_one_line_before_any_request(
    small_sandbox: Sandbox, fast_config: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    run = run_tap(tmp_path, {**fast_config, **batch(tmp_path / "a-file" / "batches")})

    assert run.returncode == 1
    assert small_sandbox.requests == []
    assert "Setting batch_config.storage.root" in run.error
    assert "cannot be written" in run.error


def limited_file_size(limit: int) -> Callable[[], None]:
    """A child-process set-up: files may grow to ``limit`` bytes, then writes fail (EFBIG)."""

    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


def test_batch_on_a_full_disk_leaves_no_file_and_says_one_line(
    sandbox_factory: Callable[..., Sandbox], fast_settings: dict[str, Any], tmp_path: Path
) -> None:
    # The disk behind the batch root fills up mid-file: a file may grow to 1.5 MB, the spool
    # of the export (about 1.2 MB) fits, the batch file (about 2.5 MB) does not.
    sandbox = sandbox_factory(users=3500, seed=9)
    folder = tmp_path / "batches"
    settings = batch(folder, "none")
    settings["batch_config"]["batch_size"] = 100_000
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(sandbox.tap_config(**fast_settings, **settings)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_SPAAZA_USERS_")}
    done = subprocess.run(
        [sys.executable, "-m", "tap_spaaza_users", "--config", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        preexec_fn=limited_file_size(1_500_000),
    )
    run = CliRun(done.returncode, done.stdout, done.stderr)

    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "Writing a BATCH file in" in run.error
    assert "File too large" in run.error
    assert files_in(folder) == set()  # the partial file of personal data is gone
    assert not any(m["type"] == "BATCH" for m in run.messages)


def test_the_readme_points_to_what_the_tap_deletes() -> None:
    page = ROOT / "docs" / "what-the-tap-deletes.md"
    assert "(docs/what-the-tap-deletes.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    for fact in ("delete_completed_tasks", "keep_batch_files", "delivered_batch_files", "tag"):
        assert fact in text
