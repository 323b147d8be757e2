"""The sweep: before a sync exports, delete the tap's tagged tasks that can no longer serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tap_spaaza_users.export import TaskStatus, state_code
from tap_spaaza_users.state import tasks as task_state

if TYPE_CHECKING:
    import datetime as dt
    import logging

    from tap_spaaza_users.export import UsersExport
    from tap_spaaza_users.state.keys import State
    from tap_spaaza_users.tasks.clock import TaskClock
    from tap_spaaza_users.tasks.listing import TaskList


class TaskSweep:
    """Step 1 of the ledger's protocol (``tasks.TaskLedger``), with ``delete_completed_tasks``.

    It deletes the tap's tagged tasks that can no longer serve: in ERROR, delivered by a
    recorded sync, DONE and created more than ``task_reuse_hours`` ago, or unfinished longer
    than the task timeout (abandoned); the list judges each (``TaskList.sweep_reason``). The
    task the state names in flight is kept; an untagged task is never touched.
    """

    def __init__(
        self,
        export: UsersExport,
        stream_state: State,
        *,
        listing: TaskList,
        clock: TaskClock,
        clean_up: bool,
    ) -> None:
        """Keep the ledger's collaborators, and whether to delete at all (``clean_up``)."""
        self.export = export
        self.listing = listing
        self.clock = clock
        self.clean_up = clean_up
        self._state = stream_state
        #: Unfinished tasks the sweep found old on this machine's clock, to judge again on
        #: Spaaza's once read (see ``run``).
        self._postponed: list[dict[str, Any]] = []
        #: The sweep's ``delivered_up_to``.
        self._delivered_up_to: dt.datetime | None = None

    @property
    def logger(self) -> logging.Logger:
        """The export's logger."""
        return self.export.logger

    def run(self, delivered_up_to: dt.datetime | None = None) -> list[int]:
        """Delete the tap's tasks that can no longer serve; returns their ids.

        Among them every DONE task of this selection whose window ended at or before
        ``delivered_up_to`` (the input state's bookmark or backfill watermark: delivered),
        found from its tag; every page of the task list is read.
        """
        if not self.clean_up:
            return []
        keep = task_state.recorded_tasks(self._state)
        self._delivered_up_to = delivered_up_to
        deleted = []
        for task in self.listing.tasks(every_page=True):
            task_id = task["id"]
            reason = self.listing.sweep_reason(task, delivered_up_to)
            if task_id in keep or reason is None:
                continue
            status = TaskStatus.of(state_code(task))
            if self.clock.offset is None and (status is None or not status.is_terminal):
                # Abandoned by our clock only: judged again once this run has read Spaaza's
                # (its first created task), so a clock hours behind deletes no fresh task.
                self._postponed.append(task)
                continue
            if self.export.discard(task_id, reason):
                deleted.append(task_id)
        self._deleted(deleted)
        return deleted

    def judge_postponed(self) -> None:
        """Delete the unfinished tasks the sweep left to judge on Spaaza's clock, if abandoned."""
        postponed, self._postponed = self._postponed, []
        keep = task_state.recorded_tasks(self._state)
        deleted = [
            task["id"]
            for task in postponed
            if task["id"] not in keep
            and self.listing.abandoned(task)
            and self.export.discard(task["id"], self._why_swept(task))
        ]
        self._deleted(deleted)

    def _deleted(self, deleted: list[int]) -> None:
        """Forget the tasks the clean-up deleted, and say which."""
        if deleted:
            self.listing.forget(deleted)
            self.logger.info(
                "Clean-up: deleted %d export tasks this tap had left: %s",
                len(deleted),
                ", ".join(str(i) for i in deleted),
            )

    def _why_swept(self, task: dict[str, Any]) -> str:
        """Why the sweep deletes a postponed task it now found abandoned on Spaaza's clock."""
        return self.listing.sweep_reason(task, self._delivered_up_to) or "abandoned"
