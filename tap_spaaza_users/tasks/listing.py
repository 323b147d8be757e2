"""Spaaza's task list as a sync reads it: the tap's tagged tasks, which may serve, which must go."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.export import TaskStatus, state_code, unfinished
from tap_spaaza_users.state.keys import SELECTION, State
from tap_spaaza_users.state.tasks import delivered_tasks, given_up_tasks
from tap_spaaza_users.tasks.tags import ours, tag_of, tagged_window_end

if TYPE_CHECKING:
    import logging
    from collections.abc import Collection

    from tap_spaaza_users.export import UsersExport
    from tap_spaaza_users.tasks.clock import TaskClock

#: Tasks asked for per ``GET /tasks`` page, and pages read at most (newest first).
PAGE_SIZE = 100
MAX_PAGES = 5
#: A task list read this recently is not read again before creating a task.
RELIST_SECONDS = 1.0
#: Tasks read after creating one, to find another run's twin created at the same moment.
TWIN_PAGE_SIZE = 20
#: Added to the task timeout before an unfinished task counts as abandoned: ``created_date``
#: has whole seconds, and Spaaza's clock and this machine's may differ a little.
CLOCK_SLACK = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Found:
    """A task of the list: its id and state code."""

    id: int
    code: str


class TaskList:
    """The chain's export tasks that carry the tap's tag, newest first, as one sync reads them.

    The list is read once per sync (every page for the sweep), and its newest page again just
    before a task is created. It judges each listed task for the ledger (``tasks.TaskLedger``):
    whether it may serve a window's key (``find``), whether another run's twin was created at
    the same moment (``older_twin``), and why the sweep deletes it (``sweep_reason``). Ages are
    read on Spaaza's clock (``tasks.clock``). It also holds the task the state names in flight
    to the same age limits (``too_old_in_flight``).
    """

    def __init__(
        self,
        export: UsersExport,
        stream_state: State,
        *,
        horizon: dt.timedelta,
        clock: TaskClock,
    ) -> None:
        """Keep the collaborators.

        Args:
            export: The export (its client lists the tasks).
            stream_state: The stream state, which names the delivered and given-up tasks.
            horizon: How old a DONE task may be and still be adopted (``task_reuse_hours``).
            clock: Spaaza's task clock, which every task age is measured on.
        """
        self.export = export
        self.horizon = horizon
        self.clock = clock
        self._state = stream_state
        self._listed: list[dict[str, Any]] | None = None
        self._listed_at = float("-inf")

    @property
    def logger(self) -> logging.Logger:
        """The export's logger."""
        return self.export.logger

    @property
    def timeout(self) -> dt.timedelta:
        """How long a run waits for a task before giving up on it (``task_timeout_minutes``)."""
        return dt.timedelta(seconds=self.export.poll.timeout)

    def tasks(self, *, fresh: bool = False, every_page: bool = False) -> list[dict[str, Any]]:
        """The chain's tagged export tasks, newest first: listed once per sync, or ``fresh``.

        ``every_page`` (the sweep) reads every page, not only the first ``MAX_PAGES``.
        """
        if self._listed is None or fresh or every_page:
            chain = self.export.client.settings.chain_id
            tagged: list[dict[str, Any]] = []
            seen: set[Any] = set()
            pages = itertools.count() if every_page else range(MAX_PAGES)
            for page in pages:
                batch = self.export.client.list_tasks(
                    limit=PAGE_SIZE, offset=page * PAGE_SIZE, action="export"
                )
                new = [t for t in batch if t.get("id") not in seen]
                if batch and not new:
                    self.logger.warning(
                        "GET /tasks at offset %d listed only tasks already read (is offset "
                        "ignored on the way?); the task list stops there",
                        page * PAGE_SIZE,
                    )
                    break
                seen.update(t.get("id") for t in new)
                tagged += [t for t in new if ours(t, chain)]
                if len(batch) < PAGE_SIZE:
                    break
            self._listed = tagged
            self._listed_at = time.monotonic()
        return self._listed

    def listed(self, task_id: int) -> dict[str, Any] | None:
        """The task as last listed, or None when the list read so far does not hold it."""
        return next((t for t in self._listed or [] if t.get("id") == task_id), None)

    def forget(self, task_ids: Collection[int]) -> None:
        """Drop deleted tasks from the list read so far."""
        if self._listed is not None:
            self._listed = [t for t in self._listed if t["id"] not in task_ids]

    def find(self, key: str, *, fresh: bool = False) -> Found | None:
        """A listed task to adopt: same key, not delivered, able to serve (step 2.3), or None.

        Unfinished and younger than the task timeout (an older one was abandoned), or DONE
        and younger than the horizon; among several, a DONE one first, then the oldest: the
        one that two runs' twins settle on (``older_twin``), so an adopted task is never the
        twin its creator deletes.
        """
        delivered = {*delivered_tasks(self._state), *given_up_tasks(self._state)}
        candidates = []
        for task in self.tasks(fresh=fresh):
            code = state_code(task)
            if code is None or tag_of(task) != key or task["id"] in delivered:
                continue
            age = self.age(task)
            if code == TaskStatus.DONE:
                adoptable = age is not None and age <= self.horizon
            elif unfinished(code):
                adoptable = not self.abandoned(task)
                if not adoptable:
                    self.logger.info(
                        "Not adopting export task %d for this window: %s for more than %s "
                        "(task_timeout_minutes), abandoned by an earlier run",
                        task["id"],
                        code,
                        minutes(self.timeout),
                    )
            else:
                adoptable = False
            if adoptable:
                candidates.append(Found(task["id"], code))
        candidates.sort(key=lambda found: (found.code != TaskStatus.DONE, found.id))
        return candidates[0] if candidates else None

    def find_recent(self, key: str, *, force: bool = False) -> Found | None:
        """``find`` among the newest page of the task list, read again just before creating.

        Another run of the same settings started moments ago (a scheduler's overlap, a
        retry) creates the same tasks: its newest ones are adopted instead of exporting
        each window twice. A list read less than ``RELIST_SECONDS`` ago is not read again
        (unless ``force``: the check after creating, ``older_twin``, which reads only the
        newest ``TWIN_PAGE_SIZE`` tasks, where a twin created moments ago is).
        """
        if not force and time.monotonic() - self._listed_at < RELIST_SECONDS:
            return None
        self._listed_at = time.monotonic()
        chain = self.export.client.settings.chain_id
        limit = TWIN_PAGE_SIZE if force else PAGE_SIZE
        newest = self.export.client.list_tasks(limit=limit, offset=0, action="export")
        fresh = [t for t in newest if ours(t, chain)]
        ids = {t["id"] for t in fresh}
        self._listed = fresh + [t for t in self._listed or [] if t["id"] not in ids]
        return self.find(key)

    def older_twin(self, key: str, task_id: int) -> dict[str, Any] | None:
        """Another run's older task of the same key, able to serve, in the newest tasks, or None."""
        self.find_recent(key, force=True)
        used = {*delivered_tasks(self._state), *given_up_tasks(self._state)}
        twins = [
            t
            for t in self._listed or []
            if tag_of(t) == key
            and t["id"] < task_id
            and t["id"] not in used
            and (state_code(t) == TaskStatus.DONE or unfinished(state_code(t)))
            and not self.abandoned(t)
        ]
        return min(twins, key=lambda t: t["id"]) if twins else None

    def sweep_reason(self, task: dict[str, Any], delivered_up_to: dt.datetime | None) -> str | None:
        """Why a listed tagged task is deleted by the sweep, or None to keep it."""
        code = (state_code(task) or "").upper()
        if code == TaskStatus.ERROR:
            return "left in ERROR by an earlier run"
        status = TaskStatus.of(code)
        if status is None or not status.is_terminal:
            if not self.abandoned(task):
                return None
            return (
                f"{code or 'in no state'} for more than {minutes(self.timeout)} "
                "(task_timeout_minutes), abandoned by an earlier run"
            )
        delivered = self._delivered(task, code, delivered_up_to)
        if delivered is not None:
            return delivered
        age = self.age(task)
        if age is not None and age > self.horizon:
            hours = self.horizon.total_seconds() / 3600
            return f"finished more than {hours:g} hours ago (task_reuse_hours), too old to reuse"
        return None

    def _delivered(self, task: dict[str, Any], code: str, up_to: dt.datetime | None) -> str | None:
        """Why a finished task counts as delivered, or None.

        The state names it delivered, or it is a DONE task of this selection whose window
        ended at or before ``up_to``, what the state says was delivered (the sweep's).
        """
        if task["id"] in delivered_tasks(self._state):
            return "its file was delivered"
        tagged = tagged_window_end(task)
        if code != TaskStatus.DONE or tagged is None or up_to is None:
            return None
        selection, end = tagged
        if selection == self._state.get(SELECTION) and end is not None and end <= up_to:
            return "its window ended at or before the bookmark: delivered"
        return None

    def too_old_in_flight(self, code: str, age: dt.timedelta) -> str | None:
        """Why the task the state names in flight, ``age`` ago, is too old to adopt, or None.

        The same limits as for a task found in the list (``find``), on the tap's own clock
        (since the state named it): DONE longer than ``task_reuse_hours`` (its file may be
        gone), or unfinished longer than the task timeout (abandoned).
        """
        if code == TaskStatus.DONE and age > self.horizon:
            hours = self.horizon.total_seconds() / 3600
            return f"named in flight more than {hours:g} hours ago (task_reuse_hours), too old"
        if unfinished(code) and age > self.timeout + CLOCK_SLACK:
            return (
                f"{code} for more than {minutes(self.timeout)} (task_timeout_minutes), "
                "abandoned by an earlier run"
            )
        return None

    def abandoned(self, task: dict[str, Any]) -> bool:
        """Whether an unfinished task is older than any run would have waited for it.

        A task whose age the list does not tell is not abandoned: a run that adopts it
        gives up after the task timeout and deletes it.
        """
        age = self.age(task)
        return age is not None and age > self.timeout + CLOCK_SLACK

    def age(self, task: dict[str, Any]) -> dt.timedelta | None:
        """How long ago a task was created on Spaaza's clock, or None when the list does not say."""
        return self.clock.age(task)


def minutes(span: dt.timedelta) -> str:
    """A span as whole or fractional minutes, e.g. ``180 minutes``."""
    return f"{span.total_seconds() / 60:g} minutes"
