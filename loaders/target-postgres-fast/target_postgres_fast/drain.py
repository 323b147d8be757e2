"""A full sink's batch loaded in a thread while the next batch is read.

When a sink fills up, the SDK loads its batch (COPY into a temporary table, merge, drop)
before it reads the next line: meanwhile the tap blocks on a full pipe, and most of that time
is the server's. Here the batch is handed to one worker thread and reading goes on. At most
one batch loads at a time, and every other step that touches the database or the state
(SCHEMA, STATE, ACTIVATE_VERSION, BATCH, any other drain, the end of the input) first waits
for it: a STATE message is still emitted only once every record before it is loaded, and a
batch that fails raises its own error there, before any later state. A stop signal is no
exception: its drain, run inside any of those waits, waits for the same batch, and one that
comes while a batch changes hands is handled just after (``signals``).

The records of a BATCH file are loaded the same way (``load``), while the next file is read.
"""

from __future__ import annotations

import functools
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from target_postgres_fast.signals import held_stop_signals

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.sinks import Sink


class BackgroundDrain:
    """At most one batch loading in a worker thread."""

    def __init__(self) -> None:
        """No batch loading yet; the thread starts with the first one."""
        self._executor: ThreadPoolExecutor | None = None
        self._loading: tuple[Future[None], Sink, int | None] | None = None

    def start(self, sink: Sink) -> None:
        """Hand the sink's batch to the worker, as the SDK's ``drain_one`` would load it.

        The sink is left as after the SDK's drain (an empty batch, a zero count), so it
        takes records again at once; its written count is tallied when the batch is done.
        """
        self.finish()
        if sink.current_size == 0:
            return
        with held_stop_signals():  # the records are out of the sink, not yet in the worker
            context = sink.start_drain()
            records = sink._batch_records_read  # noqa: SLF001 - what mark_drained tallies
            sink._batch_records_read = 0  # noqa: SLF001 - the next batch counts from zero
            self._submit(functools.partial(_process_batch, sink, context), sink, records)

    def load(self, sink: Sink, context: dict[str, Any]) -> None:
        """Hand the records of a BATCH file to the worker, as the SDK's ``process_batch_files``.

        The SDK loads them with the sink's ``process_batch``, outside its drain: no timer, no
        count of records written, nothing to reset.
        """
        self.finish()
        self._submit(functools.partial(sink.process_batch, context), sink, None)

    def _submit(
        self,
        task: Callable[[], None],
        sink: Sink,
        records: int | None,
    ) -> None:
        """Start loading a batch in the worker (the thread starts with the first one)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drain")
        future = self._executor.submit(task)
        self._loading = (future, sink, records)

    def finish(self) -> None:
        """Wait for the batch being loaded, if any; raise its error if it failed.

        The batch stays in ``_loading`` until it is done: a stop signal's drain that runs
        inside this wait (Python runs signal handlers there) waits for the same batch,
        instead of finding nothing loading and writing a STATE before it is committed.
        """
        loading = self._loading
        if loading is None:
            return
        future, sink, records = loading
        try:
            future.result()
        except BaseException:
            if self._loading is loading:
                self._loading = None
            raise
        if self._loading is not loading:
            return  # a drain nested in the wait (a stop signal's) has finished it
        self._loading = None
        if records is None:
            return
        staged = sink._batch_records_read  # noqa: SLF001 - records of the next batch
        sink._batch_records_read = records  # noqa: SLF001
        sink.mark_drained()
        sink._batch_records_read = staged  # noqa: SLF001


def _process_batch(sink: Sink, context: dict) -> None:  # type: ignore[type-arg]
    """Load one batch, timed as the SDK times it."""
    with sink.batch_processing_timer:
        sink.process_batch(context)
