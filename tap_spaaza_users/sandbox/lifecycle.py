"""Running tasks: start when due, export in a background thread, finish when the time is up."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from tap_spaaza_users.sandbox.bodies import file_md5
from tap_spaaza_users.sandbox.export import CsvDialect, ExportOptions, write_export
from tap_spaaza_users.sandbox.faults import FILE_FAULTS, damage_export
from tap_spaaza_users.sandbox.filters import created_bounds
from tap_spaaza_users.sandbox.lines import as_values
from tap_spaaza_users.sandbox.tasks import FINISHED, Task, TaskStore, Ticker, monotonic
from tap_spaaza_users.sandbox.validation import default_saved_segments

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime
    from pathlib import Path

    from tap_spaaza_users.sandbox.clock import SandboxClock
    from tap_spaaza_users.sandbox.faults import Fault, FaultStore
    from tap_spaaza_users.sandbox.lines import ExportRow, LineBlock
    from tap_spaaza_users.sandbox.population import Overlay, Population
    from tap_spaaza_users.sandbox.validation import TaskRequest

LOGGER = logging.getLogger(__name__)
EXECUTE_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Timing:
    """How long tasks take: a fixed part plus a part per 1,000 exported users."""

    base_seconds: float = 0.0
    seconds_per_1k_users: float = 0.0

    def duration(self, rows: int) -> float:
        """Return the duration of an export of ``rows`` users."""
        return self.base_seconds + self.seconds_per_1k_users * rows / 1000


class _FileFaults(NamedTuple):
    """The task faults that shape the export file: rows cut short, then the file damaged."""

    damage: list[Fault]
    limit: int | None


class Engine:
    """Owns the tasks and drives their lifecycle."""

    def __init__(  # noqa: PLR0913
        self,
        *,
        clock: SandboxClock,
        population: Population,
        faults: FaultStore,
        workdir: Path,
        timing: Timing,
        seed: int,
    ) -> None:
        """Wire the engine to the sandbox's state; ``start`` runs the scheduler."""
        self.clock = clock
        self.population = population
        self.faults = faults
        self.workdir = workdir
        self.timing = timing
        self.seed = seed
        self.store = TaskStore()
        self.dialect = CsvDialect()
        self.saved_segments = default_saved_segments()
        self._ticker = Ticker(self.tick)

    def start(self) -> None:
        """Start the scheduler thread."""
        self._ticker.start()

    def stop(self) -> None:
        """Stop the scheduler and delete every task file."""
        self._ticker.stop()
        self.store.clear()
        self.population.rendered.close()

    def create(self, request: TaskRequest) -> Task:
        """Create a task in ``READY`` from a validated request.

        A ``task_clock_lag`` fault dates it by a task clock ``seconds`` behind (a clock that
        disagrees with the caller's; the task itself runs as usual).
        """
        now = self.clock.now()
        lag = self.faults.take(("task_clock_lag",))
        if lag is not None:
            now -= timedelta(seconds=float(lag.params.get("seconds", 4 * 3600)))
        task = Task(
            id=self.store.new_id(),
            chain=request.chain,
            desc=request.desc,
            trigger=request.trigger,
            target=request.target,
            once=request.once,
            created_date=now,
            segment=request.segment,
            extra=request.extra,
            last_modified=now,
        )
        task.log(now, "INFO", "Task created")
        self.store.add(task)
        return task

    def tick(self) -> None:
        """Start due tasks and finish those whose export and duration are over."""
        now = self.clock.now()
        for task in self.store.all().values():
            if task.code == "READY" and task.once <= now:
                self.run(task)
            elif task.code == "INPROGRESS" and task.deadline and monotonic() >= task.deadline:
                self._finish(task)

    def run(self, task: Task) -> None:
        """Start a ``READY`` task now: snapshot the users and export them in a thread."""
        with self.store.lock:
            if task.code != "READY":
                return
            now = self.clock.now()
            task.code, task.last_run_date, task.last_modified = "INPROGRESS", now, now
            task.version += 1
            task.started_at = monotonic()
            task.log(now, "INFO", "Export of users started")
            options = self._arm_task_faults(task)
            damage = [f for kind in FILE_FAULTS if (f := self.faults.take((kind,)))]
            short = self.faults.take(("short_export",))
            task.file = self.workdir / task.file_name
        overlay = self.population.snapshot()
        limit = int(short.params.get("rows", 0)) if short is not None else None
        thread = threading.Thread(
            target=self._export,
            args=(task, overlay, now, options, _FileFaults(damage, limit)),
            daemon=True,
        )
        thread.start()

    def _arm_task_faults(self, task: Task) -> ExportOptions:
        """Consume the task faults armed for the next task; return its export options."""
        error = self.faults.take(("task_error",))
        if error is not None:
            task.error_logs = list(error.params.get("logs") or ["Export failed: internal error"])
        stuck = self.faults.take(("task_stuck",))
        if stuck is not None:
            task.stuck_seconds = float(stuck.params.get("seconds", 1.0))
            task.running_code = stuck.params.get("code")
        gzipped = self.faults.take(("gzip",))
        mode = gzipped.params.get("mode", "content-encoding") if gzipped else None
        task.content_encoding = "gzip" if mode == "content-encoding" else None
        malformed = self.faults.take(("malformed_rows",))
        params = malformed.params if malformed else {}
        repeated = self.faults.take(("duplicate_rows",))
        repeat = repeated.params if repeated else {}
        return ExportOptions(
            dialect=CsvDialect(**self.dialect.describe()),
            seed=self.seed,
            gzip=gzipped is not None,
            malformed_rows=tuple(int(r) for r in params.get("rows", [1] if malformed else [])),
            malformed_problem=str(params.get("problem", "field_count")),
            malformed_column=str(params.get("column", "overall")),
            duplicates=int(repeat.get("count", 1)) if repeated else 0,
            newer_by_seconds=float(repeat.get("newer_by_seconds", 3600)),
        )

    def _export(
        self,
        task: Task,
        overlay: Overlay,
        now: datetime,
        options: ExportOptions,
        file_faults: _FileFaults | None = None,
    ) -> None:
        """Write the export file (background thread), then set the task's deadline.

        A ``short_export`` fault (``file_faults.limit``) keeps only the first ``limit`` users:
        a file with a header and no row, or far fewer rows than the chain has (a transient
        fault). The ``file_faults.damage`` faults then change the file as written.
        """
        damage, limit = file_faults or _FileFaults([], None)
        rows = 0
        try:
            if task.error_logs is None and task.file is not None:
                matching = self._matching(task, overlay, now, blocks=limit is None)
                if limit is not None:
                    matching = itertools.islice(matching, limit)
                rows = write_export(task.file, matching, options)
                damage_export(task.file, damage)
                task.md5 = file_md5(task.file)
        except Exception as exc:  # noqa: BLE001 - any failure becomes an ERROR task
            LOGGER.warning("Sandbox export of task %s failed: %s", task.id, exc)
            task.error_logs = [f"Export failed: {exc}"]
        with self.store.lock:
            task.rows = rows
            started = task.started_at or monotonic()
            duration = max(self.timing.duration(rows), task.stuck_seconds)
            task.deadline = started + duration

    def _matching(
        self, task: Task, overlay: Overlay, now: datetime, *, blocks: bool
    ) -> Iterator[ExportRow | LineBlock]:
        """Yield the snapshot's users in the task's segment; stop if the task is deleted.

        Without a segment, and with ``blocks``, unchanged base users come a block at a time.
        """
        bounds = created_bounds(task.segment, now)
        segment = task.segment
        if segment is None and blocks:
            for item in self.population.blocks(overlay, now, bounds):
                if task.cancelled:
                    return
                yield item
            return
        for row in self.population.rows(overlay, now, bounds):
            if task.cancelled:
                return
            if segment is None or segment.matches(as_values(row), now):
                yield row

    def _finish(self, task: Task) -> None:
        """Move an exported task to ``DONE`` (or ``ERROR`` with its log lines)."""
        with self.store.lock:
            if task.code != "INPROGRESS":
                return
            now = self.clock.now()
            if task.error_logs is not None:
                task.code = "ERROR"
                for message in task.error_logs:
                    task.log(now, "ERROR", message)
                if task.file is not None:
                    task.file.unlink(missing_ok=True)
            else:
                task.code, task.done_at = "DONE", time.time()
                task.log(now, "INFO", f"Exported {task.rows} users to {task.file_name}")
            task.last_modified = now
            task.version += 1
        task.finished.set()

    def execute(self, task: Task) -> dict[str, Any]:
        """Run a task now and wait until it ends; return its ``state`` object."""
        if task.code not in FINISHED:
            self.run(task)
            task.finished.wait(EXECUTE_TIMEOUT_SECONDS)
        return task.state

    def reset(self) -> None:
        """Forget every task and restore the default CSV dialect."""
        self.store.clear()
        self.dialect = CsvDialect()
