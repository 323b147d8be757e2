"""Wait for an export task to finish: a growing poll interval, heartbeats, one-line failures."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tap_spaaza_users.errors import (
    SpaazaAPIError,
    SpaazaNotFoundError,
    SpaazaTaskFailedError,
    SpaazaTaskTimeoutError,
)
from tap_spaaza_users.logs import export_times
from tap_spaaza_users.logs.fields import log_fields

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    from tap_spaaza_users.api.client import SpaazaClient
    from tap_spaaza_users.settings.typed import Settings


class TaskStatus(str, enum.Enum):
    """The documented state codes of a task; any other code is "not finished" (one warning)."""

    READY = "READY"
    INPROGRESS = "INPROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"

    def __str__(self) -> str:
        """The code as Spaaza spells it (``DONE``), in log lines and messages."""
        return str(self.value)

    @property
    def is_terminal(self) -> bool:
        """Whether the task has finished: its file is ready (DONE) or never will be (ERROR)."""
        return self in (TaskStatus.DONE, TaskStatus.ERROR)

    @classmethod
    def of(cls, code: str | None) -> TaskStatus | None:
        """The status a state code names, or None for a missing or undocumented one."""
        try:
            return cls(code)
        except ValueError:
            return None


@dataclass(frozen=True)
class PollSettings:
    """How to wait for a task."""

    interval: float
    max_interval: float
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PollSettings:
        """Poll interval, its cap and the task timeout from the tap's settings.

        Args:
            settings: The tap's settings.

        Returns:
            The poll settings.
        """
        return cls(
            interval=settings.poll_interval_seconds,
            max_interval=settings.poll_max_interval_seconds,
            timeout=settings.task_timeout_minutes * 60,
        )


class Waiting(Protocol):
    """What a wait needs of the export: its client, its pace, its log, its clock and its times."""

    client: SpaazaClient
    poll: PollSettings
    logger: logging.Logger
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    #: When (monotonic) and of which kind each task the export created was created.
    created: dict[int, tuple[float, str]]
    #: Recent export durations by kind (see export_times).
    durations: dict[str, list[int]]
    #: While a task runs, a heartbeat is logged this often (at the next poll).
    heartbeat_seconds: float


#: How much the poll interval grows after each poll.
POLL_GROWTH = 1.5
#: Log entries fetched to explain a failed task.
ERROR_LOG_LIMIT = 50
#: Log lines quoted in the error message.
ERROR_LOG_LINES = 20


def unfinished(code: str | None) -> bool:
    """Whether a task in state ``code`` may still finish: READY, INPROGRESS or an undocumented code.

    The contract's "not finished" for a code it does not list holds everywhere a task is
    waited for or adopted, not only while polling. None (no state) is not.
    """
    return code is not None and TaskStatus.of(code) not in (TaskStatus.DONE, TaskStatus.ERROR)


def state_code(task: Mapping[str, Any]) -> str | None:
    """Read ``state.code`` of a task in upper case, tolerating a missing state.

    The contract spells codes in upper case; one in another case (``done``) means the same.

    Args:
        task: A task object.

    Returns:
        The code (``DONE``), or None.
    """
    state = task.get("state")
    code = state.get("code") if isinstance(state, dict) else None
    return code.strip().upper() if isinstance(code, str) else None


def wait_until_done(
    export: Waiting, task_id: int, *, timeout: float | None, created_here: bool
) -> dict[str, Any]:
    """Poll the task with a growing interval until it is DONE (see ``UsersExport.wait``).

    Args:
        export: The export whose client polls, whose settings pace it, and whose log tells it.
        task_id: The task id.
        timeout: Seconds to wait at most (default: the task timeout).
        created_here: Whether this run created the task (only then is it deleted on a
            timeout).

    Returns:
        The task in DONE.
    """
    started = export.monotonic()
    deadline = started + (export.poll.timeout if timeout is None else timeout)
    interval = export.poll.interval
    last_code: str | None = None
    last_said = started
    polls = 0
    warned: set[str | None] = set()
    while True:
        remaining = deadline - export.monotonic()
        if remaining <= 0:
            _give_up(export, task_id, last_code, delete=created_here)
        export.sleep(min(interval, remaining))
        interval = min(interval * POLL_GROWTH, export.poll.max_interval)
        task = _poll(export, task_id, last_code, created_here=created_here)
        polls += 1
        code = state_code(task)
        now = export.monotonic()
        if code != last_code:
            fields = log_fields(task_id, state=code, seconds=now - started, polls=polls)
            export.logger.info("Export task %d is %s", task_id, code, extra=fields)
            if code == TaskStatus.DONE and last_code is not None and task_id in export.created:
                created, kind = export.created[task_id]  # seen finishing: time it
                export_times.note(export.durations, kind, now - created)
            last_code, last_said = code, now
        elif now - last_said >= export.heartbeat_seconds:
            hint, usual = export_times.hint(export.durations, task)
            left = max(deadline - now, 0.0)
            export.logger.info(
                "Export task %d is still %s after %.0fs (%d polls); %s%.0fs left before "
                "the %g-minute timeout",
                *(task_id, code, now - started, polls, hint, left, export.poll.timeout / 60),
                extra=log_fields(
                    task_id, state=code, seconds=now - started, polls=polls,
                    usual_seconds=usual, seconds_left=left,
                ),
            )  # fmt: skip
            last_said = now
        if code == TaskStatus.DONE:
            return task
        if code == TaskStatus.ERROR:
            raise _failure(export.client, task_id)
        if TaskStatus.of(code) is None and code not in warned:
            warned.add(code)
            export.logger.warning(
                "Export task %d reports an unknown state %r; treating it as not finished",
                task_id,
                code,
            )


def _poll(
    export: Waiting, task_id: int, last_code: str | None, *, created_here: bool
) -> dict[str, Any]:
    """``GET /tasks/{id}``; a task another run created that vanished is a timeout.

    Raises:
        SpaazaTaskTimeoutError: When a task this run did not create is gone.
    """
    try:
        return export.client.get_task(task_id)
    except SpaazaNotFoundError:
        if created_here:
            raise
    msg = (
        f"Export task {task_id}, left by another run, was deleted while this run waited "
        f"for it (last state {last_code}): its run gave up on it after "
        "task_timeout_minutes, or it was deleted by hand. The bookmark did not move; the "
        "next run exports afresh."
    )
    raise SpaazaTaskTimeoutError(msg)


def _failure(client: SpaazaClient, task_id: int) -> SpaazaTaskFailedError:
    """Build the error for a task in ERROR, quoting its ERROR/WARNING log lines (or all)."""
    task = client.get_task(task_id, log_limit=ERROR_LOG_LIMIT)
    entries = [entry for entry in task.get("logs") or [] if _log_line(entry)]
    serious = [entry for entry in entries if _level(entry) in ("ERROR", "WARNING")]
    lines = [_log_line(entry) for entry in serious or entries][-ERROR_LOG_LINES:]
    detail = " | ".join(lines) if lines else "Spaaza gave no log lines"
    msg = (
        f"Export task {task_id} ended in ERROR: {detail}. "
        "Fix the cause above (often a segment rule), then run the sync again."
    )
    return SpaazaTaskFailedError(client.scrub(msg))


def _give_up(export: Waiting, task_id: int, last_code: str | None, *, delete: bool) -> None:
    """Delete a task that ran out of time (if this run created it), then raise."""
    minutes = export.poll.timeout / 60
    fate = "it is left for the run that created it (or the clean-up) to delete"
    try:
        if delete:
            export.client.delete_task(task_id)
            fate = "it was deleted"
    except SpaazaAPIError as exc:
        export.logger.warning("Could not delete export task %d: %s", task_id, exc)
        fate = "deleting it failed too"
    msg = (
        f"Export task {task_id} did not finish within {minutes:g} minutes "
        f"(last state {last_code}); {fate}. Raise task_timeout_minutes for large "
        "exports, or check Spaaza's task queue."
    )
    raise SpaazaTaskTimeoutError(msg)


def _level(entry: object) -> str:
    """The upper-cased level of a task log entry, or an empty string."""
    return str(entry.get("level") or "").upper() if isinstance(entry, dict) else ""


def _log_line(entry: object) -> str:
    """One task log entry as ``LEVEL message``."""
    if isinstance(entry, dict):
        level = entry.get("level") or ""
        message = entry.get("message") or ""
        return f"{level} {message}".strip()
    return str(entry).strip()
