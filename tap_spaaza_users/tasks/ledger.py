"""The task ledger: which Spaaza export task serves each window of a sync, across runs.

The protocol, with a diagram of one window across two runs, is in ``docs/task-protocol.md``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.api.retries import backoff_delay
from tap_spaaza_users.errors import SpaazaAPIError, SpaazaTaskTimeoutError, SpaazaUncertainError
from tap_spaaza_users.export import TaskStatus, UsersExport, state_code, unfinished
from tap_spaaza_users.logs import export_times
from tap_spaaza_users.logs.fields import log_fields
from tap_spaaza_users.state import tasks as task_state
from tap_spaaza_users.state.keys import SELECTION, State
from tap_spaaza_users.tasks.clock import TaskClock
from tap_spaaza_users.tasks.listing import Found, TaskList
from tap_spaaza_users.tasks.sweep import TaskSweep
from tap_spaaza_users.tasks.tags import tag, task_key

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from tap_spaaza_users.windows import Window


class TaskLedger:
    """Which export task serves each window of a sync, across runs (``docs/task-protocol.md``).

    The protocol, in order:

    1. ``sweep()`` (with ``delete_completed_tasks``): delete the tap's tagged tasks that can no
       longer serve (``tasks.sweep`` says which); the task the state names in flight is kept.
    2. ``get_or_create(window, ahead=...)``: the window's task, in DONE. Its key (chain,
       window, request) is computed once. The task is, in order of preference: the task the
       state names in flight under that key (unless gone or failed; one under another key is
       deleted); the one this sync prepared ahead for the window; one in Spaaza's task list
       carrying the key in its tag and still able to serve (a run whose state was not saved);
       else a new one, created once (an unclear answer is looked for before trying again).
       It is named in the state, which is written, before the tasks of the ``ahead`` windows
       are created and before it is awaited.
    3. The stream emits the window's rows and closes the window (the bookmark).
    4. ``delivered(task_id)``: the state names the task delivered, never to be adopted again,
       and no longer in flight. The task is kept until the next sync's sweep: the target
       may still fail before it loads the rows, and a rerun then adopts it.
    """

    def __init__(  # noqa: PLR0913 - keyword-only, each a collaborator or a setting
        self,
        export: UsersExport,
        stream_state: State,
        *,
        horizon: dt.timedelta,
        clean_up: bool,
        flush: Callable[[], None],
        refresh_version: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        """Keep the collaborators.

        Args:
            export: The export (its client lists, creates, polls and deletes tasks); it is
                handed the state's export durations.
            stream_state: The stream state, where the task in flight and the delivered
                tasks are named, and the export durations kept (changed in place).
            horizon: How old a DONE task may be and still be adopted (``task_reuse_hours``).
            clean_up: Whether ``sweep`` deletes tasks (``delete_completed_tasks``).
            flush: Writes the state (a STATE message).
            refresh_version: The full refresh this sync exports, if any.
            sleep: How to wait between creation attempts (tests may pass a fake).
            now: The clock task ages are measured on.
        """
        self.export = export
        #: The export's waits tell how long exports of earlier runs took (from the state).
        export.durations = export_times.history(stream_state)
        self.horizon = horizon
        self.refresh_version = refresh_version
        self._state = stream_state
        self._flush = flush
        self._sleep = sleep
        self._now = now
        #: Spaaza's task clock, which every task age is measured on (``tasks.clock``).
        self.clock = TaskClock(now)
        #: Spaaza's task list as this sync reads it, and its judgement of each task.
        self.listing = TaskList(export, stream_state, horizon=horizon, clock=self.clock)
        #: Step 1, the clean-up (``tasks.sweep``).
        self._sweep = TaskSweep(
            export, stream_state, listing=self.listing, clock=self.clock, clean_up=clean_up
        )
        #: The tasks this run created: only these are deleted when a wait times out.
        self._created: set[int] = set()
        #: Tasks this sync created (or adopted) ahead for later windows, by task key.
        self._ahead: dict[str, Found] = {}

    @property
    def logger(self) -> logging.Logger:
        """The export's logger."""
        return self.export.logger

    @property
    def timeout(self) -> dt.timedelta:
        """How long a run waits for a task before giving up on it (``task_timeout_minutes``)."""
        return dt.timedelta(seconds=self.export.poll.timeout)

    # The surface: sweep, get_or_create, delivered

    def sweep(self, delivered_up_to: dt.datetime | None = None) -> list[int]:
        """Step 1: delete the tap's tasks that can no longer serve (``tasks.sweep``); their ids."""
        return self._sweep.run(delivered_up_to)

    def get_or_create(self, window: Window, *, ahead: Sequence[Window] = ()) -> int:
        """Step 2: the window's task id in DONE (``ahead``: the next windows, prepared now)."""
        now = self._now()
        body, key = self._tagged_body(window, now)
        previous = self._in_flight(key)
        if previous is not None:
            code = self.export.status(previous)
            self.logger.info("Export task %d of the interrupted run is %s", previous, code)
            too_old = self._in_flight_too_old(code)
            if too_old is not None:
                self._drop(previous, too_old)
            elif code == TaskStatus.DONE or unfinished(code):
                self._prepare_ahead(ahead)
                if code != TaskStatus.DONE:
                    self._wait(previous)
                return previous
            elif code is not None:
                self.export.discard(previous, f"in state {code}, superseded by a new task")
        found = self._ahead.pop(key, None)
        if found is not None:
            found = Found(found.id, self.export.status(found.id) or found.code)
            self.logger.info("Export task %d, prepared ahead, is %s", found.id, found.code)
        elif (found := self.listing.find(key) or self.listing.find_recent(key)) is not None:
            self.logger.info(
                "Adopting export task %d (%s) left by another run for the same window and "
                "selection, instead of exporting again",
                found.id,
                found.code,
            )
        else:
            found = self._create(body, key)
        task_state.record_task(
            self._state, found.id, key, now, refresh_version=self.refresh_version
        )
        self._flush()
        self._prepare_ahead(ahead)
        if found.code != TaskStatus.DONE:
            self._wait(found.id)
        return found.id

    def give_up(self, task_id: int, window: Window, why: str, *, afresh: bool) -> None:
        """Give up a task whose file proved unobtainable: delete it, never adopt it again.

        The caller then exports the window afresh (``get_or_create`` creates a new task).

        Args:
            task_id: The task.
            window: The window it was to serve (for the log).
            why: What proved its file unobtainable (the download's error).
            afresh: Whether the window is exported afresh now (else by the next run).
        """
        self.logger.warning(
            "%s. Giving export task %d up (deleted, never adopted again); the window %s is "
            "exported afresh %s",
            why.rstrip("."),
            task_id,
            window.describe(),
            "now" if afresh else "by the next run",
        )
        task_state.note_given_up(self._state, task_id)
        self._drop(task_id, "its file cannot be obtained")
        self._flush()

    def _drop(self, task_id: int, reason: str) -> None:
        """Delete a task this sync will not use, and forget it (in flight, listed, ahead)."""
        self.export.discard(task_id, reason)
        if task_id in task_state.recorded_tasks(self._state):
            task_state.forget_task(self._state)
        self.listing.forget({task_id})
        self._ahead = {k: f for k, f in self._ahead.items() if f.id != task_id}

    def delivered(self, task_id: int) -> None:
        """Step 4: the task delivered (never adopted again), not in flight; the caller flushes."""
        task_state.note_delivered(self._state, task_id)
        task_state.forget_task(self._state)

    # The steps of get_or_create

    def _tagged_body(self, window: Window, now: dt.datetime) -> tuple[dict[str, Any], str]:
        """The ``POST /tasks`` body of a window, its ``desc`` tagged, and its task key."""
        body = self.export.task_body(window.start, window.end, now)
        key = task_key(self.export.client.settings.chain_id, window.key(), body)
        selection = self._state.get(SELECTION)
        selection = selection if isinstance(selection, str) else None
        body["desc"] = tag(str(body["desc"]), key, selection, window.end)
        return body, key

    def _in_flight(self, key: str) -> int | None:
        """The state's in-flight task under this key; one under another key is deleted.

        A task in flight under another key (another window or selection) is left by an
        earlier run: it is deleted and forgotten.
        """
        entry = task_state.in_flight(self._state)
        if entry is None:
            return None
        task_id, recorded = entry
        if recorded == key:
            return task_id
        self.export.discard(task_id, "left by an earlier run for another window or segment")
        task_state.forget_task(self._state)
        return None

    def _in_flight_too_old(self, code: str | None) -> str | None:
        """Why the state's in-flight task is past the age limits of adoption, or None.

        The limits are the list's (``TaskList.too_old_in_flight``), on the tap's own clock.
        """
        since = task_state.in_flight_since(self._state)
        if since is None or code is None:
            return None
        return self.listing.too_old_in_flight(code, self._now() - since)

    def _prepare_ahead(self, windows: Sequence[Window]) -> None:
        """Create (or adopt) the tasks of the next backfill windows, without waiting for them.

        Spaaza exports them while the current window is awaited and loaded; each is read
        only when its window's turn comes (``max_tasks_in_flight`` bounds how many run).
        """
        now = self._now()
        for window in windows:
            body, key = self._tagged_body(window, now)
            if key in self._ahead:
                continue
            found = (
                self.listing.find(key) or self.listing.find_recent(key) or self._create(body, key)
            )
            self._ahead[key] = found
            self.logger.info(
                "Export task %d prepares the next window %s ahead (%s)",
                found.id,
                window.describe(),
                found.code,
                extra=log_fields(found.id, (window.start, window.end), state=found.code),
            )

    def _wait(self, task_id: int) -> None:
        """Wait for the task; after a timeout the state forgets it.

        A task this run created is waited for up to the task timeout, then deleted. One
        left by another run (adopted, or named in flight by the state) is waited for only
        until it is as old as its creator would wait (on Spaaza's clock), and never deleted
        here: that run, or a later sweep, deletes it, so a live run that adopted it is never
        left waiting for a deleted task.
        """
        created_here = task_id in self._created
        timeout = None
        listed = self.listing.listed(task_id)
        age = self.clock.age(listed) if listed is not None and not created_here else None
        if age is not None:
            left = self.timeout - age  # its creator gives up (and deletes it) then
            timeout = max(left.total_seconds(), self.export.poll.interval)
        try:
            self.export.wait(task_id, timeout=timeout, created_here=created_here)
        except SpaazaTaskTimeoutError:
            task_state.forget_task(self._state)
            self._flush()
            raise

    # Two runs at once

    def _older_twin(self, key: str, task_id: int) -> Found | None:
        """After creating a task: another run's older task of the same key, adopted instead.

        Two runs that looked at the list at the same moment may both create a window's
        task. The newer one yields: it deletes the task it just created (nobody waits for
        it yet) and adopts the older one, so each window is exported once.
        """
        older = self.listing.older_twin(key, task_id)
        if older is None:
            return None
        self._created.discard(task_id)
        self._drop(task_id, f"export task {older['id']} of another run exports the same window")
        self.logger.info("Adopting export task %d of another run for the same window", older["id"])
        return Found(older["id"], (state_code(older) or "").upper())

    def _create(self, body: dict[str, Any], key: str) -> Found:
        """Create the task, never twice: after an unclear answer, look for it before retrying.

        Raises:
            SpaazaAPIError: When creation kept failing (the task list shows no task).
        """
        settings = self.export.client.settings
        tries = settings.max_retries + 1
        for attempt in range(tries):
            try:
                task_id = self.export.submit(body)
            except SpaazaUncertainError as exc:
                self.logger.warning(
                    "Creating the export task got no clear answer (%s); looking for it in the "
                    "task list before trying again",
                    exc,
                )
                last = exc
            else:
                self._created.add(task_id)
                self.clock.observe(self.export.last_created)
                self._sweep.judge_postponed()
                return self._older_twin(key, task_id) or Found(task_id, TaskStatus.READY)
            found = self.listing.find(key, fresh=True)
            if found is not None:
                self.logger.info("Export task %d was created after all; using it", found.id)
                return found
            if attempt + 1 < tries:
                initial, cap = settings.retry_initial_wait, settings.retry_max_wait
                self._sleep(backoff_delay(attempt, initial, cap, None))
        msg = (
            f"Could not create the export task after {tries} tries: {last}. No task was "
            "created (the task list shows none); try again later, or raise max_retries."
        )
        raise SpaazaAPIError(msg, status=last.status)
