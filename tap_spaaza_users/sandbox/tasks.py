"""Tasks: the store, and their lifecycle READY -> INPROGRESS -> DONE | ERROR."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.sandbox.clock import iso_z

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from tap_spaaza_users.sandbox.filters import Segment

LOGGER = logging.getLogger(__name__)
FINISHED = frozenset({"DONE", "ERROR"})


@dataclass
class Task:
    """One task of the Tasks API, with the sandbox's bookkeeping."""

    id: int
    chain: int
    desc: str
    trigger: dict[str, Any]
    target: dict[str, Any]
    once: datetime
    created_date: datetime
    segment: Segment | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    code: str = "READY"
    last_run_date: datetime | None = None
    last_modified: datetime | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    debug: str = ""
    version: int = 1
    file: Path | None = None
    content_encoding: str | None = None
    md5: str | None = None  # hex MD5 of the file once written: its ETag
    rows: int | None = None
    started_at: float | None = None  # monotonic
    deadline: float | None = None  # monotonic; set once the file is written
    #: when the task became DONE (``time.time()``, set under the store's lock with the code)
    done_at: float | None = None
    error_logs: list[str] | None = None
    stuck_seconds: float = 0.0
    #: The code reported instead of INPROGRESS while the export runs (``task_stuck`` ``code``).
    running_code: str | None = None
    cancelled: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    def log(self, when: datetime, level: str, message: str) -> None:
        """Append a log entry."""
        self.logs.append({"date": iso_z(when) or "", "level": level, "message": message})

    @property
    def state(self) -> dict[str, Any]:
        """Return the task's ``state`` object."""
        running = self.running_code if self.code == "INPROGRESS" else None
        return {
            "code": running or self.code,
            "last_run_date": iso_z(self.last_run_date),
            "last_modified": iso_z(self.last_modified),
            "created_date": iso_z(self.created_date),
        }

    def to_json(self, log_limit: int = 10, offset: int = 0) -> dict[str, Any]:
        """Return the task object of the contract, with one page of ``logs``."""
        body: dict[str, Any] = {
            "id": self.id,
            "chain": self.chain,
            "desc": self.desc,
            "state": self.state,
            "trigger": self.trigger,
            "target": self.target,
            "logs": self.logs[offset : offset + log_limit],
            "debug": self.debug,
            "version": self.version,
        }
        return {**self.extra, **body}

    @property
    def file_name(self) -> str:
        """Return the export file's name."""
        return f"User_Export-{self.id}.csv"


class TaskStore:
    """Every task, by id; thread-safe."""

    def __init__(self, first_id: int = 1001) -> None:
        """Start empty; ids count up from ``first_id``."""
        self._tasks: dict[int, Task] = {}
        self._next_id = first_id
        self.lock = threading.RLock()

    def new_id(self) -> int:
        """Reserve the next task id."""
        with self.lock:
            task_id = self._next_id
            self._next_id += 1
            return task_id

    def add(self, task: Task) -> None:
        """Store a task."""
        with self.lock:
            self._tasks[task.id] = task

    def get(self, task_id: int) -> Task | None:
        """Return a task by id, or ``None``."""
        with self.lock:
            return self._tasks.get(task_id)

    def all(self) -> dict[int, Task]:
        """Return a copy of the id -> task map."""
        with self.lock:
            return dict(self._tasks)

    def pop(self, task_id: int) -> Task | None:
        """Remove a task, cancel its export and delete its file."""
        with self.lock:
            task = self._tasks.pop(task_id, None)
        if task is not None:
            discard(task)
        return task

    def clear(self) -> None:
        """Remove every task and its file."""
        with self.lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
        for task in tasks:
            discard(task)


def discard(task: Task) -> None:
    """Cancel a task's export and delete its file."""
    task.cancelled = True
    task.finished.set()
    if task.file is not None:
        task.file.unlink(missing_ok=True)


class Ticker:
    """A background thread calling ``tick`` every ``interval`` seconds until stopped."""

    def __init__(self, tick: Any, interval: float = 0.02) -> None:  # noqa: ANN401
        """Prepare the thread; ``start`` runs it."""
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-tasks", daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        """Tick until stopped; a failing tick is logged, never fatal."""
        while not self._stop.wait(self._interval):
            self._safe_tick()

    def _safe_tick(self) -> None:
        """Tick once; a failing tick is logged, never fatal."""
        try:
            self._tick()
        except Exception:
            LOGGER.exception("Sandbox task scheduler tick failed")


def monotonic() -> float:
    """Return the monotonic clock used for task durations."""
    return time.monotonic()
