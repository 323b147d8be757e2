"""SIGTERM during a BATCH sync: no STATE past the files announced, and the rerun loses nothing.

The tap runs as the ``tap-spaaza-users`` command writing BATCH files while its export still
downloads (slowly). Once the first BATCH message is out it gets SIGTERM: it must exit 143
without writing a STATE for records still in a file no BATCH message announced (the state
may already hold their window's bookmark), remove those unannounced files, and a rerun from
its last STATE must deliver every user the announced files did not.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.tap_cli import TapProcess

    from tap_spaaza_users.sandbox import Sandbox


def batch_ids(messages: list[dict[str, Any]]) -> tuple[set[Path], set[int]]:
    """The files the BATCH messages announced, and the user ids in them."""
    paths = {
        Path(unquote(urlparse(url).path))
        for message in messages
        if message["type"] == "BATCH"
        for url in message["manifest"]
    }
    ids = {json.loads(line)["id"] for path in paths for line in path.read_text().splitlines()}
    return paths, ids


def test_sigterm_mid_batch_sync_leaves_no_state_past_the_announced_files(
    sandbox_factory: Callable[..., Sandbox],
    fast_settings: dict[str, Any],
    start_tap: Callable[..., TapProcess],
    tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(users=3000, seed=22)
    root = tmp_path / "batches"
    root.mkdir()
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": root.as_uri()},
        "batch_size": 500,
    }
    config = sandbox.tap_config(**fast_settings, batch_config=batch_config)
    sandbox.inject("slow_download", bytes_per_second=100_000)  # the file takes ~15 s
    tap = start_tap(config)
    tap.read_until(lambda messages: any(m["type"] == "BATCH" for m in messages))

    tap.kill(signal.SIGTERM, keep_unread=True)

    assert tap.process.returncode == 128 + signal.SIGTERM
    assert "Stopped by SIGTERM: BATCH files were being written" in tap.stderr_path.read_text()
    announced, delivered = batch_ids(tap.messages)
    assert 0 < len(delivered) < 3000
    assert set(root.iterdir()) == announced  # the files no message announced are removed
    rerun = start_tap(config, state=tap.last_state)
    rerun.finish()
    _, rest = batch_ids(rerun.messages)
    assert delivered | rest == {int(user["id"]) for user in sandbox.users()}
