"""Task ages on Spaaza's own clock: a task's ``created_date`` is never compared with ours.

Spaaza's task clock may disagree with this machine's (a clock hours behind, a zone taken for
UTC): a fresh task would then look abandoned, or an old one fresh. The tap reads Spaaza's
clock from the ``created_date`` of each task it creates, and ages every task on that clock.
Until it has created one, an unfinished task that looks abandoned is only judged again once
a reading is in (``tasks.TaskLedger``: the sweep postpones it; a run that then creates the
window's task yields to it if it proves fresh).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable


def created_date(task: object) -> dt.datetime | None:
    """A task's ``state.created_date``, or None when the task does not say."""
    task_state = task.get("state") if isinstance(task, dict) else None
    created = task_state.get("created_date") if isinstance(task_state, dict) else None
    try:
        return parse_utc(str(created)) if created else None
    except ValueError:
        return None


class TaskClock:
    """Spaaza's task clock as seen from here: the offset between it and this machine's."""

    def __init__(self, now: Callable[[], dt.datetime]) -> None:
        """Start without a reading; ``now`` is this machine's clock."""
        self._now = now
        self.offset: dt.timedelta | None = None

    def observe(self, task: object) -> None:
        """Read Spaaza's clock from a task this run has just created."""
        created = created_date(task)
        if created is not None:
            self.offset = created - self._now()

    def age(self, task: object) -> dt.timedelta | None:
        """How old a task is on Spaaza's clock (on ours until a reading), or None if unknown."""
        created = created_date(task)
        if created is None:
            return None
        return self._now() + (self.offset or dt.timedelta()) - created
