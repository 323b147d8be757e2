"""A stop signal never lets the PostgreSQL wrapper write a STATE before the batch it covers.

The wrapper loads a full sink's batch in a worker thread while it reads on (``drain``). The
SDK's SIGTERM/SIGINT handler drains every sink and writes the last STATE: run inside the
wrapper's wait for the worker, or while a batch is taken out of the sink, it must still wait
for that batch. Scripts in the loader's virtual environment send real signals to themselves
at those two moments, with a batch that a test event holds in the worker; and the installed
wrapper itself gets SIGTERM while PostgreSQL holds its batch (a lock on the table).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from .conftest import TARGET_POSTGRES_BIN as BIN
from .conftest import require_postgres_loader

if TYPE_CHECKING:
    from pathlib import Path

#: A batch held in the worker; a signal comes while the main thread waits for it.
DURING_THE_WAIT = """
import json, os, signal, threading
from target_postgres_fast.drain import BackgroundDrain
release = threading.Event()
class Sink:
    def process_batch(self, context):
        release.wait(10)
drain = BackgroundDrain()
drain.load(Sink(), {"records": []})
future = drain._loading[0]
seen = []
def on_signal(signum, frame):
    drain.finish()  # what the SDK's drain_all does first, inside the wait below
    seen.append(future.done())
signal.signal(signal.SIGTERM, on_signal)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
threading.Timer(0.9, release.set).start()
drain.finish()
print(json.dumps({"done_when_the_handler_went_on": seen}))
"""

#: A signal while a full sink's records are taken out of it, before the worker has them.
WHILE_CHANGING_HANDS = """
import json, os, signal, threading
from target_postgres_fast.drain import BackgroundDrain
class Sink:
    current_size = 3
    _batch_records_read = 3
    def start_drain(self):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives with the records in neither place
        return {"records": [1, 2, 3]}
    batch_processing_timer = threading.Lock()
    def process_batch(self, context):
        pass
    def mark_drained(self):
        pass
drain = BackgroundDrain()
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(drain._loading is not None))
drain.start(Sink())
drain.finish()
print(json.dumps({"handed_over_when_handled": seen}))
"""


def run(script: str) -> dict[str, list[bool]]:
    require_postgres_loader()
    result = subprocess.run(
        [str(BIN / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_stop_signal_during_the_wait_for_a_batch_waits_for_the_same_batch() -> None:
    assert run(DURING_THE_WAIT) == {"done_when_the_handler_went_on": [True]}


def test_a_stop_signal_while_a_batch_changes_hands_is_handled_once_the_worker_has_it() -> None:
    assert run(WHILE_CHANGING_HANDS) == {"handed_over_when_handled": [True]}


def test_sigterm_to_the_wrapper_emits_no_state_before_its_rows_are_committed(
    tmp_path: Path, server: tuple[str, dict[str, Any], list[str]]
) -> None:
    """The real wrapper, its batch held by a lock on the table: SIGTERM waits for the commit."""
    dsn, settings, schemas = server
    schema_name = f"signals_{uuid.uuid4().hex[:10]}"
    schemas.append(schema_name)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings | {
        "default_target_schema": schema_name, "use_copy": True, "validate_records": False,
        "batch_size_rows": 100,
    }), encoding="utf-8")  # fmt: skip
    command = [str(BIN / "target-postgres-fast"), "--config", str(config)]
    schema = {"type": "object", "properties": {"id": {"type": ["integer"]}}}
    head = {"type": "SCHEMA", "stream": "users", "schema": schema, "key_properties": ["id"]}
    subprocess.run(command, input=lines([head, record(0)]), text=True, check=True, timeout=120)
    # S1 covers ids 1-60; at id 100 the batch goes to the worker, which waits for the lock;
    # S2 makes the main thread wait for the worker: SIGTERM lands in that wait.
    messages = [head, *map(record, range(1, 61)), {"type": "STATE", "value": {"s": 1}}]
    messages += [*map(record, range(61, 101)), {"type": "STATE", "value": {"s": 2}}]
    with psycopg.connect(dsn) as blocker:
        blocker.execute(f'LOCK TABLE "{schema_name}".users IN ACCESS EXCLUSIVE MODE')
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as target:
            out: list[bytes] = []
            reader = threading.Thread(target=lambda: out.extend(target.stdout or ()), daemon=True)
            reader.start()
            try:
                assert target.stdin is not None
                target.stdin.write(lines(messages).encode())
                target.stdin.flush()
                wait_for_a_waiting_lock(dsn)
                time.sleep(0.5)  # the second STATE reached: the main thread waits for the batch
                target.send_signal(signal.SIGTERM)
                time.sleep(2)
                assert target.poll() is None, "it ended with its batch still uncommitted"
                assert out == [], "a STATE went out before the rows it covers were committed"
            finally:
                blocker.rollback()  # the lock goes: the batch commits
            assert target.wait(60) == 0  # the SDK's own status after SIGTERM
            reader.join(10)
    states = [json.loads(line) for line in out]  # a target writes the state values
    assert states == [{"s": 1}]  # the STATE of the rows now committed (S2 never processed)
    with psycopg.connect(dsn) as connection:
        count = connection.execute(
            f'SELECT count(*) FROM "{schema_name}".users'  # noqa: S608 - our own name
        ).fetchone()
    assert count == (101,)


def record(user_id: int) -> dict[str, Any]:
    """A RECORD message of one user."""
    return {"type": "RECORD", "stream": "users", "record": {"id": user_id}}


def lines(messages: list[dict[str, Any]]) -> str:
    """Singer lines."""
    return "".join(json.dumps(message) + "\n" for message in messages)


def wait_for_a_waiting_lock(dsn: str) -> None:
    """Wait until a backend waits for a lock (the wrapper's worker, on the locked table)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(dsn, autocommit=True) as connection:
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
        while connection.execute(waiting).fetchone() == (0,):
            assert time.monotonic() < deadline, "the wrapper never reached the locked table"
            time.sleep(0.05)
