"""target-duckdb 0.8.0, with the tap's final STATE handed back once every row is loaded.

target-duckdb flushes a stream when its buffer reaches ``batch_size_rows`` and then emits
the state it had at that moment; after the input ends it flushes what is left and emits the
latest state, but only when something was left. When the last flush happens on the very last
record (the sync's row count is an exact multiple of ``batch_size_rows``), the tap's final
STATE, which arrives after that record, is never emitted and Meltano keeps an older bookmark.

Here the input is passed through unchanged, the last STATE seen is remembered, and once
target-duckdb has returned normally (every buffered row loaded) that STATE is emitted again.
Meltano keeps the last STATE a loader emits, so the batch size can stay small (bounded
memory) without losing the final bookmark.

With the default settings the messages go to ``bulk`` instead: RECORD lines are spooled and
read by DuckDB's JSON reader into target-duckdb's tables, and BATCH messages (jsonl files)
are loaded the same way. Settings that need target-duckdb's per-record work
(``bulk.PER_RECORD_SETTINGS``: validation, metadata columns, hard delete, flattening,
flush_all_streams) keep target-duckdb's own path.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import target_duckdb

from target_duckdb_final_state.bulk import PER_RECORD_SETTINGS, BulkLoader, handles

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: How a STATE message starts its type field, with and without the space ``json`` puts there.
STATE_MARKERS = ('"type":"STATE"', '"type": "STATE"')
BATCH_MARKERS = ('"type":"BATCH"', '"type": "BATCH"')


#: target-duckdb's own path knows no BATCH message ("Unknown message type BATCH").
PER_RECORD_BATCH = (
    "BATCH messages are loaded only without the settings that need target-duckdb's own "
    f"per-record path ({', '.join(PER_RECORD_SETTINGS)}): unset them, or send RECORD messages "
    "(tap-spaaza-users instead of tap-spaaza-users--batch)"
)


class LastState:
    """Passes Singer messages through and keeps the value of the last STATE among them."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.value: Any = None
        self.seen = False

    def watch(self, lines: Iterable[str]) -> Iterator[str]:
        """Yield each line unchanged, noting each STATE message's value.

        Args:
            lines: Singer messages, one JSON object per line.

        Yields:
            The same lines.
        """
        for line in lines:
            if any(marker in line for marker in STATE_MARKERS):
                message = json.loads(line)
                if message.get("type") == "STATE":
                    self.value, self.seen = message.get("value"), True
            elif (
                any(marker in line for marker in BATCH_MARKERS)
                and json.loads(line).get("type") == "BATCH"
            ):
                raise ValueError(PER_RECORD_BATCH)
            yield line


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """End the run as Ctrl-C does, through its clean-up (Python's default skips it).

    Raises:
        SystemExit: Always, with 128 + the signal (143).
    """
    del frame
    raise SystemExit(128 + signum)


def main() -> None:
    """Run target-duckdb over standard input, then emit the last STATE it was given."""
    # Meltano and schedulers stop a loader with SIGTERM: the spool of users' records, and any
    # temporary file target-duckdb holds, is removed on the way out.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", "--config", help="Config file")
    args = parser.parse_args()
    config: dict[str, Any] = {}
    if args.config:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    lines = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    connection = target_duckdb.duckdb_connect(config)
    if handles(config):
        BulkLoader(connection, config, target_duckdb.emit_state).run(lines)
        connection.close()
        return
    state = LastState()
    target_duckdb.persist_lines(connection, config, state.watch(lines))
    connection.close()
    if state.seen:
        target_duckdb.emit_state(state.value)


if __name__ == "__main__":
    main()
