"""A stop signal never lets the PostgreSQL wrapper write a STATE before the batch it covers.

The wrapper loads a full sink's batch in a worker thread while it reads on (``drain``). The
SDK's SIGTERM/SIGINT handler drains every sink and writes the last STATE: run inside the
wrapper's wait for the worker, or while a batch is taken out of the sink, it must still wait
for that batch. Scripts in the loader's virtual environment send real signals to themselves
at those two moments, with a batch that a test event holds in the worker.
"""

from __future__ import annotations

import json
import subprocess

from .conftest import TARGET_POSTGRES_BIN as BIN
from .conftest import require_postgres_loader

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
