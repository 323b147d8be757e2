"""The task ledger: which Spaaza export task serves each window of a sync, across runs.

The protocol, with a diagram of one window across two runs, is in ``docs/task-protocol.md``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users import state
from tap_spaaza_users.api.retries import backoff_delay
from tap_spaaza_users.errors import SpaazaAPIError, SpaazaTaskTimeoutError, SpaazaUncertainError
from tap_spaaza_users.export import TaskStatus, UsersExport, state_code
from tap_spaaza_users.logs import export_times
from tap_spaaza_users.logs.fields import log_fields
from tap_spaaza_users.tasks.clock import TaskClock
from tap_spaaza_users.tasks.tags import ours, tag, tag_of, tagged_window_end, task_key

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from tap_spaaza_users.windows import Window

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


class TaskLedger:
    """Which export task serves each window of a sync, across runs (``docs/task-protocol.md``).

    The protocol, in order:

    1. ``sweep()`` (with ``delete_completed_tasks``): delete the tap's tagged tasks that can no
       longer serve: in ERROR, delivered by a recorded sync, DONE and created more than
       ``task_reuse_hours`` ago, or unfinished longer than the task timeout (abandoned). The task
       the state names in flight is kept; an untagged task is never touched.
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
        stream_state: state.State,
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
        self.clean_up = clean_up
        self.refresh_version = refresh_version
        self._state = stream_state
        self._flush = flush
        self._sleep = sleep
        self._now = now
        self._listed: list[dict[str, Any]] | None = None
        self._listed_at = float("-inf")
        #: Unfinished tasks the sweep found old on this machine's clock, to judge again on
        #: Spaaza's once read (see ``sweep``).
        self._postponed: list[dict[str, Any]] = []
        #: Spaaza's task clock, which every task age is measured on (``tasks.clock``).
        self.clock = TaskClock(now)
        #: The tasks this run created: only these are deleted when a wait times out.
        self._created: set[int] = set()
        #: The sweep's ``delivered_up_to``.
        self._delivered_up_to: dt.datetime | None = None
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
        """Step 1: delete the tap's tasks that can no longer serve; returns their ids.

        Among them every DONE task of this selection whose window ended at or before
        ``delivered_up_to`` (the input state's bookmark or backfill watermark: delivered),
        found from its tag; every page of the task list is read.
        """
        if not self.clean_up:
            return []
        keep = state.recorded_tasks(self._state)
        self._delivered_up_to = delivered_up_to
        deleted = []
        for task in self._tasks(every_page=True):
            task_id = task["id"]
            reason = self._sweep_reason(task)
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

    def _deleted(self, deleted: list[int]) -> None:
        """Forget the tasks the clean-up deleted, and say which."""
        if deleted:
            self._listed = [t for t in self._listed or [] if t["id"] not in deleted]
            self.logger.info(
                "Clean-up: deleted %d export tasks this tap had left: %s",
                len(deleted),
                ", ".join(str(i) for i in deleted),
            )

    def _sweep_postponed(self) -> None:
        """Delete the unfinished tasks the sweep left to judge on Spaaza's clock, if abandoned."""
        postponed, self._postponed = self._postponed, []
        keep = state.recorded_tasks(self._state)
        deleted = [
            task["id"]
            for task in postponed
            if task["id"] not in keep
            and self._abandoned(task)
            and self.export.discard(task["id"], self._sweep_reason(task) or "abandoned")
        ]
        self._deleted(deleted)

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
            elif code in (TaskStatus.DONE, TaskStatus.READY, TaskStatus.INPROGRESS):
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
        elif (found := self._find(key) or self._find_recent(key)) is not None:
            self.logger.info(
                "Adopting export task %d (%s) left by another run for the same window and "
                "selection, instead of exporting again",
                found.id,
                found.code,
            )
        else:
            found = self._create(body, key)
        state.record_task(self._state, found.id, key, now, refresh_version=self.refresh_version)
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
        state.note_given_up(self._state, task_id)
        self._drop(task_id, "its file cannot be obtained")
        self._flush()

    def _drop(self, task_id: int, reason: str) -> None:
        """Delete a task this sync will not use, and forget it (in flight, listed, ahead)."""
        self.export.discard(task_id, reason)
        if task_id in state.recorded_tasks(self._state):
            state.forget_task(self._state)
        if self._listed is not None:
            self._listed = [t for t in self._listed if t["id"] != task_id]
        self._ahead = {k: f for k, f in self._ahead.items() if f.id != task_id}

    def delivered(self, task_id: int) -> None:
        """Step 4: the task delivered (never adopted again), not in flight; the caller flushes."""
        state.note_delivered(self._state, task_id)
        state.forget_task(self._state)

    # The steps of get_or_create

    def _tagged_body(self, window: Window, now: dt.datetime) -> tuple[dict[str, Any], str]:
        """The ``POST /tasks`` body of a window, its ``desc`` tagged, and its task key."""
        body = self.export.task_body(window, now)
        key = task_key(self.export.client.settings.chain_id, window, body)
        selection = self._state.get(state.SELECTION)
        selection = selection if isinstance(selection, str) else None
        body["desc"] = tag(str(body["desc"]), key, selection, window.end)
        return body, key

    def _in_flight(self, key: str) -> int | None:
        """The state's in-flight task under this key; one under another key is deleted.

        A task in flight under another key (another window or selection) is left by an
        earlier run: it is deleted and forgotten.
        """
        entry = state.in_flight(self._state)
        if entry is None:
            return None
        task_id, recorded = entry
        if recorded == key:
            return task_id
        self.export.discard(task_id, "left by an earlier run for another window or segment")
        state.forget_task(self._state)
        return None

    def _in_flight_too_old(self, code: str | None) -> str | None:
        """Why the state's in-flight task is past the age limit of adoption, or None.

        The same limits as for a task found in the list (``_find``), on the tap's own clock:
        DONE longer than ``task_reuse_hours`` (its file may be gone), or unfinished longer
        than the task timeout (abandoned).
        """
        since = state.in_flight_since(self._state)
        if since is None or code is None:
            return None
        age = self._now() - since
        if code == TaskStatus.DONE and age > self.horizon:
            hours = self.horizon.total_seconds() / 3600
            return f"named in flight more than {hours:g} hours ago (task_reuse_hours), too old"
        if code in (TaskStatus.READY, TaskStatus.INPROGRESS) and age > self.timeout + CLOCK_SLACK:
            return (
                f"{code} for more than {_minutes(self.timeout)} (task_timeout_minutes), "
                "abandoned by an earlier run"
            )
        return None

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
            found = self._find(key) or self._find_recent(key) or self._create(body, key)
            self._ahead[key] = found
            self.logger.info(
                "Export task %d prepares the next window %s ahead (%s)",
                found.id,
                window.describe(),
                found.code,
                extra=log_fields(found.id, window, state=found.code),
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
        listed = next((t for t in self._listed or [] if t.get("id") == task_id), None)
        age = self.clock.age(listed) if listed is not None and not created_here else None
        if age is not None:
            left = self.timeout - age  # its creator gives up (and deletes it) then
            timeout = max(left.total_seconds(), self.export.poll.interval)
        try:
            self.export.wait(task_id, timeout=timeout, created_here=created_here)
        except SpaazaTaskTimeoutError:
            state.forget_task(self._state)
            self._flush()
            raise

    # Spaaza's task list

    def _tasks(self, *, fresh: bool = False, every_page: bool = False) -> list[dict[str, Any]]:
        """The chain's tagged export tasks, newest first: listed once per sync, or ``fresh``.

        ``every_page`` (the sweep) reads every page, not only the first ``MAX_PAGES``.
        """
        if self._listed is None or fresh or every_page:
            chain = self.export.client.settings.chain_id
            tagged: list[dict[str, Any]] = []
            pages = itertools.count() if every_page else range(MAX_PAGES)
            for page in pages:
                batch = self.export.client.list_tasks(
                    limit=PAGE_SIZE, offset=page * PAGE_SIZE, action="export"
                )
                tagged += [t for t in batch if ours(t, chain)]
                if len(batch) < PAGE_SIZE:
                    break
            self._listed = tagged
            self._listed_at = time.monotonic()
        return self._listed

    def _find(self, key: str, *, fresh: bool = False) -> Found | None:
        """A listed task to adopt: same key, not delivered, able to serve (step 2.3), or None.

        Unfinished and younger than the task timeout (an older one was abandoned), or DONE
        and younger than the horizon; among several, a DONE one first, then the newest.
        """
        delivered = {*state.delivered_tasks(self._state), *state.given_up_tasks(self._state)}
        candidates = []
        for task in self._tasks(fresh=fresh):
            code = (state_code(task) or "").upper()
            if tag_of(task) != key or task["id"] in delivered:
                continue
            age = self._age(task)
            if code == TaskStatus.DONE:
                adoptable = age is not None and age <= self.horizon
            elif code in (TaskStatus.READY, TaskStatus.INPROGRESS):
                adoptable = not self._abandoned(task)
                if not adoptable:
                    self.logger.info(
                        "Not adopting export task %d for this window: %s for more than %s "
                        "(task_timeout_minutes), abandoned by an earlier run",
                        task["id"],
                        code,
                        _minutes(self.timeout),
                    )
            else:
                adoptable = False
            if adoptable:
                candidates.append(Found(task["id"], code))
        candidates.sort(key=lambda found: (found.code != TaskStatus.DONE, -found.id))
        return candidates[0] if candidates else None

    def _find_recent(self, key: str, *, force: bool = False) -> Found | None:
        """``_find`` among the newest page of the task list, read again just before creating.

        Another run of the same settings started moments ago (a scheduler's overlap, a
        retry) creates the same tasks: its newest ones are adopted instead of exporting
        each window twice. A list read less than ``RELIST_SECONDS`` ago is not read again
        (unless ``force``: the check after creating, ``_older_twin``, which reads only the
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
        return self._find(key)

    def _older_twin(self, key: str, task_id: int) -> Found | None:
        """After creating a task: another run's older task of the same key, adopted instead.

        Two runs that looked at the list at the same moment may both create a window's
        task. The newer one yields: it deletes the task it just created (nobody waits for
        it yet) and adopts the older one, so each window is exported once.
        """
        self._find_recent(key, force=True)
        serving = (TaskStatus.READY, TaskStatus.INPROGRESS, TaskStatus.DONE)
        used = {*state.delivered_tasks(self._state), *state.given_up_tasks(self._state)}
        twins = [
            t
            for t in self._listed or []
            if tag_of(t) == key
            and t["id"] < task_id
            and t["id"] not in used
            and TaskStatus.of(state_code(t)) in serving
            and not self._abandoned(t)
        ]
        if not twins:
            return None
        older = min(twins, key=lambda t: t["id"])
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
                self._sweep_postponed()
                return self._older_twin(key, task_id) or Found(task_id, TaskStatus.READY)
            found = self._find(key, fresh=True)
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

    def _sweep_reason(self, task: dict[str, Any]) -> str | None:
        """Why a listed tagged task is deleted by the sweep, or None to keep it."""
        code = (state_code(task) or "").upper()
        if code == TaskStatus.ERROR:
            return "left in ERROR by an earlier run"
        status = TaskStatus.of(code)
        if status is None or not status.is_terminal:
            if not self._abandoned(task):
                return None
            return (
                f"{code or 'in no state'} for more than {_minutes(self.timeout)} "
                "(task_timeout_minutes), abandoned by an earlier run"
            )
        delivered = self._delivered(task, code)
        if delivered is not None:
            return delivered
        age = self._age(task)
        if age is not None and age > self.horizon:
            hours = self.horizon.total_seconds() / 3600
            return f"finished more than {hours:g} hours ago (task_reuse_hours), too old to reuse"
        return None

    def _delivered(self, task: dict[str, Any], code: str) -> str | None:
        """Why a finished task counts as delivered, or None.

        The state names it delivered, or it is a DONE task of this selection whose window
        ended at or before what the state says was delivered (``sweep``).
        """
        if task["id"] in state.delivered_tasks(self._state):
            return "its file was delivered"
        tagged = tagged_window_end(task)
        up_to = self._delivered_up_to
        if code != TaskStatus.DONE or tagged is None or up_to is None:
            return None
        selection, end = tagged
        if selection == self._state.get(state.SELECTION) and end is not None and end <= up_to:
            return "its window ended at or before the bookmark: delivered"
        return None

    def _abandoned(self, task: dict[str, Any]) -> bool:
        """Whether an unfinished task is older than any run would have waited for it.

        A task whose age the list does not tell is not abandoned: a run that adopts it
        gives up after the task timeout and deletes it.
        """
        age = self._age(task)
        return age is not None and age > self.timeout + CLOCK_SLACK

    def _age(self, task: dict[str, Any]) -> dt.timedelta | None:
        """How long ago a task was created on Spaaza's clock, or None when the list does not say."""
        return self.clock.age(task)


def _minutes(span: dt.timedelta) -> str:
    """A span as whole or fractional minutes, e.g. ``180 minutes``."""
    return f"{span.total_seconds() / 60:g} minutes"
