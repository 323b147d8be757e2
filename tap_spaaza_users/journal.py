"""Spaaza's task list as the tap's journal: tagged export tasks are found again, adopted or swept.

Every export task the tap creates carries, at the end of its ``desc``, a short tag such as
``[tap-spaaza-users:3f2a9c1b7e4d5a60]``: the tap's name and a fingerprint of what the task
asks for (chain, window start and end, selection). A run that lost its state (Meltano saves
none before a target has flushed records) or whose ``POST /tasks`` answer was lost finds its
task in ``GET /tasks`` by that tag instead of exporting again.

A tagged task is adopted while it can still serve: unfinished and younger than the task
timeout, or DONE and younger than ``task_reuse_hours``. An unfinished one older than the
task timeout is abandoned: the run that created it would have given up on it and deleted it,
so it was killed, or its deletion failed, or the task is stuck in Spaaza. Adopting it would
only wait on it again; it is never adopted, and the sweep deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users import state
from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.errors import SpaazaAPIError, SpaazaUncertainError
from tap_spaaza_users.export import DONE, ERROR, INPROGRESS, READY, UsersExport, state_code
from tap_spaaza_users.retries import backoff_delay

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Collection

    from tap_spaaza_users.windows import Window

#: The name in the tag: only tasks carrying it are ever adopted or deleted by the sweep.
TAG_NAME = "tap-spaaza-users"
_TAG = re.compile(r"\[" + re.escape(TAG_NAME) + r":([0-9a-f]{16})\]")
#: Tasks asked for per ``GET /tasks`` page, and pages read at most (newest first).
PAGE_SIZE = 100
MAX_PAGES = 5
_UNFINISHED = frozenset({READY, INPROGRESS})
_FINISHED = frozenset({DONE, ERROR})
#: Added to the task timeout before an unfinished task counts as abandoned: ``created_date``
#: has whole seconds, and Spaaza's clock and this machine's may differ a little.
CLOCK_SLACK = dt.timedelta(minutes=1)


def fingerprint(chain_id: int, window: Window, body: dict[str, Any]) -> str:
    """What an export task asks for, whenever it is sent: chain, window and selection.

    Args:
        chain_id: The chain.
        window: The window the task exports.
        body: The ``POST /tasks`` body (its trigger time and ``desc`` do not count).

    Returns:
        16 hex digits.
    """
    asked = {"chain": chain_id, **window.key(), "request": state.request_key(body)}
    text = json.dumps(asked, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tag(desc: str, mark: str) -> str:
    """A readable task description with the machine-readable tag at its end."""
    return f"{desc} [{TAG_NAME}:{mark}]"


def tag_of(task: object) -> str | None:
    """The fingerprint in a listed task's tag, or None for a task the tap did not create."""
    desc = task.get("desc") if isinstance(task, dict) else None
    found = _TAG.search(desc) if isinstance(desc, str) else None
    return found.group(1) if found else None


@dataclass(frozen=True)
class Found:
    """A task of the list: its id and state code."""

    id: int
    code: str


class TaskJournal:
    """Finds the tap's own tasks in the chain's task list, creates tasks once, sweeps old ones."""

    def __init__(
        self,
        export: UsersExport,
        *,
        horizon: dt.timedelta,
        delivered: Collection[int],
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        """Keep the collaborators.

        Args:
            export: The export (its client lists, creates and deletes tasks).
            horizon: How old a task may be and still be adopted (``task_reuse_hours``).
            delivered: Tasks whose files a recorded sync delivered: never adopted.
            sleep: How to wait between creation attempts (tests may pass a fake).
            now: The clock task ages are measured on.
        """
        self.export = export
        self.horizon = horizon
        self.delivered = set(delivered)
        self._sleep = sleep
        self._now = now
        self._listed: list[dict[str, Any]] | None = None

    @property
    def logger(self) -> logging.Logger:
        """The export's logger."""
        return self.export.logger

    @property
    def timeout(self) -> dt.timedelta:
        """How long a run waits for a task before giving up on it (``task_timeout_minutes``)."""
        return dt.timedelta(seconds=self.export.poll.timeout)

    def tagged_body(self, window: Window, now: dt.datetime) -> tuple[dict[str, Any], str]:
        """The ``POST /tasks`` body of a window, its ``desc`` tagged, and its fingerprint."""
        body = self.export.task_body(window, now)
        mark = fingerprint(self.export.client.settings.chain_id, window, body)
        body["desc"] = tag(str(body["desc"]), mark)
        return body, mark

    def tasks(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """The chain's export tasks carrying the tag, newest first (listed once per sync).

        Args:
            fresh: List again (after a creation whose answer was lost).

        Returns:
            The tagged tasks of the first ``MAX_PAGES`` pages.
        """
        if self._listed is None or fresh:
            chain = self.export.client.settings.chain_id
            tagged: list[dict[str, Any]] = []
            for page in range(MAX_PAGES):
                batch = self.export.client.list_tasks(
                    limit=PAGE_SIZE, offset=page * PAGE_SIZE, action="export"
                )
                tagged += [t for t in batch if _ours(t, chain)]
                if len(batch) < PAGE_SIZE:
                    break
            self._listed = tagged
        return self._listed

    def find(self, mark: str, *, fresh: bool = False) -> Found | None:
        """A task to adopt: same fingerprint, not delivered, and still able to serve.

        An unfinished task serves while it is younger than the task timeout (an older one
        is abandoned, see the module docstring); a DONE one while its file is surely still
        there (younger than the horizon). Among several, a DONE one (no wait) and then the
        newest is preferred.

        Args:
            mark: The fingerprint of the task this run would create.
            fresh: List again instead of using the sync's listing.

        Returns:
            The task, or None.
        """
        candidates = []
        for task in self.tasks(fresh=fresh):
            code = (state_code(task) or "").upper()
            if tag_of(task) != mark or task["id"] in self.delivered:
                continue
            age = self._age(task)
            if code == DONE:
                adoptable = age is not None and age <= self.horizon
            elif code in _UNFINISHED:
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
        candidates.sort(key=lambda found: (found.code != DONE, -found.id))
        return candidates[0] if candidates else None

    def create(self, body: dict[str, Any], mark: str) -> Found:
        """Create the task, never twice: after an unclear answer, look for it before retrying.

        Args:
            body: The tagged task body.
            mark: Its fingerprint.

        Returns:
            The created task (or the one the lost answer had created).

        Raises:
            SpaazaAPIError: When creation kept failing.
        """
        settings = self.export.client.settings
        tries = settings.max_retries + 1
        for attempt in range(tries):
            try:
                return Found(self.export.submit(body), READY)
            except SpaazaUncertainError as exc:
                self.logger.warning(
                    "Creating the export task got no clear answer (%s); looking for it in the "
                    "task list before trying again",
                    exc,
                )
                last = exc
            found = self.find(mark, fresh=True)
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

    def sweep(self, keep: Collection[int] = ()) -> list[int]:
        """Delete the tap's tasks that can no longer be adopted.

        Those in ERROR, those whose file a recorded sync delivered, DONE ones older than the
        horizon, and unfinished ones older than the task timeout (abandoned). A task without
        the tag is never touched.

        Args:
            keep: Tasks in use by this sync.

        Returns:
            The ids deleted.
        """
        deleted = []
        for task in self.tasks():
            task_id = task["id"]
            reason = self._sweep_reason(task)
            if task_id in keep or reason is None:
                continue
            if self.export.discard(task_id, reason):
                deleted.append(task_id)
        if deleted:
            self._listed = [t for t in self.tasks() if t["id"] not in deleted]
            self.logger.info(
                "Clean-up: deleted %d export tasks this tap had left: %s",
                len(deleted),
                ", ".join(str(i) for i in deleted),
            )
        return deleted

    def _sweep_reason(self, task: dict[str, Any]) -> str | None:
        """Why a listed tagged task is deleted by the sweep, or None to keep it."""
        code = (state_code(task) or "").upper()
        if code == ERROR:
            return "left in ERROR by an earlier run"
        if code not in _FINISHED:
            if not self._abandoned(task):
                return None
            return (
                f"{code or 'in no state'} for more than {_minutes(self.timeout)} "
                "(task_timeout_minutes), abandoned by an earlier run"
            )
        if task["id"] in self.delivered:
            return "its file was delivered"
        age = self._age(task)
        if age is not None and age > self.horizon:
            hours = self.horizon.total_seconds() / 3600
            return f"finished more than {hours:g} hours ago (task_reuse_hours), too old to reuse"
        return None

    def _abandoned(self, task: dict[str, Any]) -> bool:
        """Whether an unfinished task is older than any run would have waited for it.

        A task whose age the list does not tell is not abandoned: a run that adopts it
        gives up after the task timeout and deletes it.
        """
        age = self._age(task)
        return age is not None and age > self.timeout + CLOCK_SLACK

    def _age(self, task: dict[str, Any]) -> dt.timedelta | None:
        """How long ago a task was created, or None when the list does not say."""
        task_state = task.get("state")
        created = task_state.get("created_date") if isinstance(task_state, dict) else None
        try:
            return self._now() - parse_utc(str(created)) if created else None
        except ValueError:
            return None


def _minutes(span: dt.timedelta) -> str:
    """A span as whole or fractional minutes, e.g. ``180 minutes``."""
    return f"{span.total_seconds() / 60:g} minutes"


def _ours(task: object, chain_id: int) -> bool:
    """Whether a listed task carries the tag, an id, and (if it says) the configured chain."""
    if not isinstance(task, dict) or not tag_of(task):
        return False
    task_id, chain = task.get("id"), task.get("chain")
    return isinstance(task_id, int) and (not isinstance(chain, int) or chain == chain_id)
