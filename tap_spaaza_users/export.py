"""The export lifecycle: submit the users export task, wait for it, hand out its download URL."""

from __future__ import annotations

import datetime as dt
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tap_spaaza_users import segments
from tap_spaaza_users.api.client import ClientSettings, SpaazaClient
from tap_spaaza_users.errors import SpaazaAPIError, SpaazaFileUnobtainableError, SpaazaNotFoundError
from tap_spaaza_users.logs import export_times
from tap_spaaza_users.logs.fields import log_fields
from tap_spaaza_users.tasks import polling
from tap_spaaza_users.tasks.polling import PollSettings, TaskStatus, state_code, unfinished

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, Sequence

    from tap_spaaza_users.settings.typed import Settings

__all__ = [
    "BOUNDARY_MARGIN",
    "PollSettings",
    "TaskStatus",
    "UsersExport",
    "build_export_task",
    "created_rule",
    "make_client",
    "state_code",
    "unfinished",
]

#: ``is_after_date`` is strict on the server, and the file carries whole seconds. To keep a
#: user created exactly at the window start, the rule asks for users created after one
#: second before it; the stream then drops anything older than the window start itself.
#: A closed window asks up to one second past its end the same way (``is_between_date`` is
#: inclusive, but whole seconds and a stricter server must not lose a user at the seam);
#: the stream keeps exactly ``[start, end)`` and drops ids it already emitted.
BOUNDARY_MARGIN = dt.timedelta(seconds=1)


def build_export_task(  # noqa: PLR0913 - keyword-only, each a fact of the task
    *,
    chain_id: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None = None,
    rules: Sequence[Mapping[str, Any]] = (),
    segment: segments.SegmentChoice | None = None,
    now: dt.datetime,
    origin: str,
) -> dict[str, Any]:
    """Build the ``POST /tasks`` body of a users export that runs now.

    Args:
        chain_id: The chain to export.
        window_start: Users created at or after this moment are wanted; None for all.
        window_end: Users created before this moment are wanted; None for up to now.
        rules: Further rules from the settings, ANDed with the window rule.
        segment: The users asked for (saved segment or rules and join); replaces ``rules``.
            When it cannot take the window server-side, the window is left to the stream.
        now: The current time; the task is triggered once, at this moment.
        origin: Who asks (tap name and version), for the task's description.

    Returns:
        The task body.
    """
    choice = segment or segments.SegmentChoice(rules=tuple(rules))
    all_rules = list(choice.rules)
    window_rule = created_rule(window_start, window_end)
    if window_rule is not None and choice.server_side_window:
        all_rules.insert(0, window_rule)
    desc = f"{origin}: {_describe(window_start, window_end)}"
    if choice.segment_id is not None or choice.rules:
        desc += f", {choice.describe()}"
    trigger: dict[str, Any] = {"once": segments.format_rule_date(now)}
    if choice.segment_id is not None:
        trigger["segment_id"] = choice.segment_id
    elif all_rules:
        trigger["segment"] = segments.users_segment(chain_id, all_rules, choice.join)
    return {
        "chain": chain_id,
        "desc": desc,
        "target": {"action": "export", "export_index": "users", "export_format": "csv"},
        "trigger": trigger,
    }


def created_rule(
    window_start: dt.datetime | None, window_end: dt.datetime | None
) -> dict[str, Any] | None:
    """The ``created_date`` rule of a window, one margin wider on each bounded side.

    Args:
        window_start: Inclusive start, or None.
        window_end: Exclusive end, or None.

    Returns:
        The rule, or None when the window is all history.
    """
    if window_end is None:
        if window_start is None:
            return None
        return segments.created_after_rule(window_start - BOUNDARY_MARGIN)
    end = segments.format_rule_date(window_end + BOUNDARY_MARGIN)
    if window_start is None:
        rule = {"operator": "is_before_date", "end_date": end}
    else:
        start = segments.format_rule_date(window_start - BOUNDARY_MARGIN)
        rule = {"operator": "is_between_date", "start_date": start, "end_date": end}
    return {"field_name": "created_date", "field_type": "date", **rule}


def _describe(window_start: dt.datetime | None, window_end: dt.datetime | None) -> str:
    """The task description's window part."""
    if window_start is None and window_end is None:
        return "all users"
    text = "users created"
    if window_start is not None:
        text += f" since {segments.format_rule_date(window_start)}"
    if window_end is not None:
        text += f" before {segments.format_rule_date(window_end)}"
    return text


def make_client(settings: Settings, user_agent: str, logger: logging.Logger) -> SpaazaClient:
    """A Services API client from the tap's settings (close it when done).

    Args:
        settings: The tap's settings.
        user_agent: The User-Agent header of every request.
        logger: Where retries are logged.

    Returns:
        The client.
    """
    client_settings = ClientSettings(
        api_url=settings.api_url,
        chain_id=settings.chain_id,
        token_id=settings.access_token_id,
        token_secret=settings.access_token_secret,
        user_agent=user_agent,
        timeout=settings.request_timeout_seconds,
        max_retries=settings.max_retries,
        retry_initial_wait=settings.retry_initial_wait_seconds,
        retry_max_wait=settings.retry_max_wait_seconds,
    )
    return SpaazaClient(client_settings, logger)


class UsersExport:
    """Runs one users export task from creation to download URL."""

    def __init__(
        self,
        client: SpaazaClient,
        poll: PollSettings,
        logger: logging.Logger,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep the collaborators.

        Args:
            client: The Tasks API client.
            poll: Poll interval, its cap and the task timeout.
            logger: Where the story is told.
            sleep: How to wait (tests may pass a fake).
            monotonic: The clock the timeout is measured on.
        """
        self.client = client
        self.poll = poll
        self.logger = logger
        self.sleep = sleep
        self.monotonic = monotonic
        #: Recent export durations by kind (the stream hands in the state's, see export_times).
        self.durations: dict[str, list[int]] = {}
        #: When (monotonic) and of which kind each task this export created was created.
        self.created: dict[int, tuple[float, str]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, user_agent: str, origin: str, logger: logging.Logger
    ) -> UsersExport:
        """The export the settings ask for, with its own client (close it when done).

        Args:
            settings: The tap's settings.
            user_agent: The User-Agent header of every request.
            origin: Who asks (tap name and version), for the task's description.
            logger: Where the story is told.

        Returns:
            The export.
        """
        client = make_client(settings, user_agent, logger)
        export = cls(client, PollSettings.from_settings(settings), logger)
        export.segment = settings.segment
        export.origin = origin
        return export

    #: The users the settings ask for (saved segment, rules, or everyone).
    segment: segments.SegmentChoice = segments.SegmentChoice()
    #: Who asks, for the task's description.
    origin: str = "tap-spaaza-users"
    #: The last task object ``POST /tasks`` answered (its ``created_date`` reads Spaaza's clock).
    last_created: dict[str, Any] | None = None
    #: While a task runs, a heartbeat is logged this often (at the next poll).
    heartbeat_seconds: float = 30.0

    def task_body(
        self, start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime
    ) -> dict[str, Any]:
        """The ``POST /tasks`` body exporting a window (``[start, end)``) of the chosen users."""
        return build_export_task(
            chain_id=self.client.settings.chain_id,
            window_start=start,
            window_end=end,
            segment=self.segment,
            now=now,
            origin=self.origin,
        )

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def submit(self, body: dict[str, Any]) -> int:
        """Create the export task.

        Args:
            body: The task body from :func:`build_export_task`.

        Returns:
            The task id.

        Raises:
            SpaazaAPIError: If the answer carries no task id.
        """
        task = self.client.create_task(body)
        self.last_created = task
        task_id = task.get("id")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            msg = "POST /tasks answered without a task id"
            raise SpaazaAPIError(msg)
        self.created[task_id] = (self.monotonic(), export_times.kind_of(body))
        code = state_code(task)
        self.logger.info(
            "Created export task %d (%s), state %s",
            task_id,
            body["desc"],
            code,
            extra=log_fields(task_id, state=code),
        )
        return task_id

    def wait(
        self, task_id: int, *, timeout: float | None = None, created_here: bool = True
    ) -> dict[str, Any]:
        """Poll the task with a growing interval until it is DONE.

        A task this run did not create (adopted from another run, or named by the state)
        is waited for only as long as its creator would (``timeout``), and never deleted
        on a timeout: another live run may be waiting for it too. If it vanishes while
        waited for, its creator gave up on it (or it was deleted by hand).

        Each state change is logged once; while the state stays the same, a heartbeat
        (state, elapsed time, polls, time left before the timeout) every
        ``heartbeat_seconds``, so a long export is never silent. Where the chain's recent
        exports of the same kind were timed, the heartbeat says how long they usually took.
        A task this export created and saw finish is timed for the next syncs.

        Args:
            task_id: The task id.
            timeout: Seconds to wait at most (default: the task timeout).
            created_here: Whether this run created the task (only then is it deleted on a
                timeout).

        Returns:
            The task in DONE.

        Raises:
            SpaazaTaskTimeoutError: If it is still not finished after the task timeout
                (a task created here is then deleted).
        """
        return polling.wait_until_done(self, task_id, timeout=timeout, created_here=created_here)

    def status(self, task_id: int) -> str | None:
        """Look up a task left by an earlier run.

        Args:
            task_id: The task id.

        Returns:
            Its state code, or None when it no longer exists (404).
        """
        try:
            return state_code(self.client.get_task(task_id))
        except SpaazaNotFoundError:
            return None

    def discard(self, task_id: int, reason: str) -> bool:
        """Delete a task that is no longer needed; a failure is only a warning.

        Args:
            task_id: The task id.
            reason: Why, for the log (e.g. "its file was delivered").

        Returns:
            Whether the task is gone.
        """
        try:
            self.client.delete_task(task_id)
        except SpaazaNotFoundError:
            return True
        except SpaazaAPIError as exc:
            self.logger.warning(
                "Could not delete export task %d (%s): %s",
                task_id,
                reason,
                exc,
                extra=log_fields(task_id),
            )
            return False
        self.logger.info("Deleted export task %d: %s", task_id, reason, extra=log_fields(task_id))
        return True

    def download_url(self, task_id: int) -> str:
        """Ask for a fresh pre-signed URL of the export file (never logged: it is signed).

        Args:
            task_id: The task id.

        Returns:
            The URL.

        Raises:
            SpaazaFileUnobtainableError: When Spaaza has no URL for the task (404 or 410):
                the task is gone, or its file is, although the task list shows it DONE.
        """
        try:
            return self.client.download_url(task_id)
        except SpaazaAPIError as exc:
            if exc.status not in (HTTPStatus.NOT_FOUND, HTTPStatus.GONE):
                raise
            status = exc.status
        code = self.status(task_id)
        if code is None:
            msg = f"Export task {task_id} is gone (GET /tasks/{task_id} answers 404)"
        else:
            msg = (
                f"Export task {task_id} is {code}, but GET /tasks/{task_id}/download_url "
                f"answers HTTP {status}: its file cannot be obtained"
            )
        raise SpaazaFileUnobtainableError(msg)
