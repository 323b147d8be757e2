"""The users stream: window from the bookmark, one export task, typed records, then the bookmark."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL

from tap_spaaza_users import batching, inflight, output, refresh, segments, shaping
from tap_spaaza_users.client import ClientSettings, SpaazaClient
from tap_spaaza_users.contract import (
    PRIMARY_KEY,
    REPLICATION_KEY,
    parse_utc,
    users_json_schema,
    utc_text,
)
from tap_spaaza_users.download import download_export
from tap_spaaza_users.errors import SpaazaTaskTimeoutError
from tap_spaaza_users.export import (
    DONE,
    INPROGRESS,
    READY,
    PollSettings,
    UsersExport,
    build_export_task,
)
from tap_spaaza_users.idset import IdSet
from tap_spaaza_users.records import UsersCsvReader
from tap_spaaza_users.windows import Window, plan_sync

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib.messages import RecordMessage


class UsersStream(Stream):
    """Every user of the chain, incremental on ``created_date``.

    The export file comes in no particular order, so the stream is unsorted: the SDK keeps
    the greatest ``created_date`` seen as a progress marker, and the stream promotes it to
    the bookmark only when a window's whole file was emitted. An interrupted sync leaves the
    bookmark as it was; the state also names the export task in flight, so the next run
    reuses it instead of exporting again (see ``inflight``).
    """

    name = "users"
    primary_keys: ClassVar[list[str]] = [PRIMARY_KEY]
    replication_key = REPLICATION_KEY
    is_sorted = False
    # records.py types every value itself; the SDK's conformance has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: This sync's full refresh (``full_refresh_days``), or None for an incremental sync.
    full_refresh: refresh.FullRefresh | None = None

    def __init__(self, tap: Any) -> None:  # noqa: ANN401
        """Create the stream with its schema from the column list.

        Args:
            tap: The tap.
        """
        super().__init__(tap, schema=users_json_schema())

    def make_client(self) -> SpaazaClient:
        """Build a Services API client from the settings.

        Returns:
            The client (close it when done).
        """
        return SpaazaClient(ClientSettings.from_config(self.config, self.user_agent), self.logger)

    @property
    def user_agent(self) -> str:
        """The User-Agent of every request: the setting, or the tap's name and version."""
        return self.config.get("user_agent") or f"{self._tap.name}/{self._tap.plugin_version}"

    @property
    def server_side_window(self) -> bool:
        """Whether Spaaza applies the created_date window; if not, only our filter does."""
        return segments.SegmentChoice.from_config(self.config).server_side_window

    def _announce_own_window(self, start: dt.datetime | None) -> None:
        """Say once per sync that the bookmark is applied on our side, and why."""
        self.logger.info(
            "The bookmark is applied on our side: %s is exported whole each sync, then "
            "users created before %s are left out",
            segments.SegmentChoice.from_config(self.config).describe(),
            start or "the start (no bookmark or start_date yet, so none)",
        )

    def plan(self, context: Context | None) -> list[Window]:
        """This sync's export windows, from the settings and the state.

        Args:
            context: Stream partition (none for this stream).

        Returns:
            The windows, oldest first.
        """
        return plan_sync(
            self.config,
            bookmark=self._bookmark(context),
            delivered_before=inflight.delivered_before(self.stream_state),
            now=dt.datetime.now(dt.timezone.utc),
        )

    def _bookmark(self, context: Context | None) -> dt.datetime | None:
        """The bookmark a sync starts from (none during a full refresh, which starts over)."""
        if self.full_refresh:
            return None
        bookmark = self.get_starting_replication_key_value(context)
        own = self.stream_state.get(inflight.BOOKMARK)
        if own and "replication_key" not in self.stream_state:
            # The SDK ignores a bookmark whose key is not named; it can only be ours.
            bookmark = max(parse_utc(str(own)), parse_utc(str(bookmark or own))).isoformat()
        return parse_utc(str(bookmark)) if bookmark else None

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Export, download and read each window, advancing the bookmark after each.

        Args:
            context: Stream partition (none for this stream).

        Yields:
            Typed user records, each user once per sync.
        """
        self.full_refresh = refresh.start(self)
        windows = self.plan(context)
        if not self.server_side_window:
            self._announce_own_window(windows[0].start)
        if len(windows) > 1:
            self.logger.info("Backfill in %d windows, from %s", len(windows), windows[0].describe())
        # Ids emitted this sync, to drop repeats from the lookback overlap and window seams.
        seen = IdSet()
        with (
            tempfile.TemporaryDirectory(prefix="tap-spaaza-users-") as workdir,
            contextlib.closing(self.make_client()) as client,
            output.flushed(self._tap.message_writer),
        ):
            export = UsersExport(client, PollSettings.from_config(self.config), self.logger)
            for window in windows:
                yield from self._sync_window(export, window, Path(workdir), seen)
        refresh.complete(self, self.full_refresh)

    def _sync_window(
        self, export: UsersExport, window: Window, workdir: Path, seen: IdSet
    ) -> Iterator[dict[str, Any]]:
        """Obtain the window's finished task, emit its file, then close the window."""
        task_id = self._finished_task(export, window)
        settings = export.client.settings
        result = download_export(
            lambda: export.download_url(task_id),
            workdir / f"User_Export-{task_id}.csv",
            timeout=settings.timeout,
            user_agent=settings.user_agent,
            logger=self.logger,
            max_retries=settings.max_retries,
            backoff_base=settings.retry_initial_wait,
            backoff_cap=settings.retry_max_wait,
        )
        yield from self._read(result.path, task_id, window, seen)
        result.path.unlink(missing_ok=True)
        self._close_window(export, task_id, window)

    def _finished_task(self, export: UsersExport, window: Window) -> int:
        """The window's task in DONE: the one a previous run left, or a new one."""
        state = self.stream_state
        body = self._task_body(window)
        request = inflight.request_key(body)
        stale = inflight.other_task(state, window, request)
        if stale is not None:
            export.discard(
                stale, "left by an earlier run (delivered, or another window or segment)"
            )
            inflight.forget_task(state)
        previous = inflight.task_for(state, window, request)
        if previous is not None:
            code = export.status(previous)
            self.logger.info("Export task %d of the interrupted run is %s", previous, code)
            if code == DONE:
                return previous
            if code in (READY, INPROGRESS):
                self._wait(export, previous)
                return previous
            if code is not None:
                export.discard(previous, f"in state {code}, superseded by a new task")
        task_id = export.submit(body)
        inflight.record_task(state, task_id, window, dt.datetime.now(dt.timezone.utc), request)
        refresh.note_in_flight(state, self.full_refresh)
        self.flush_state()
        self._wait(export, task_id)
        return task_id

    def _wait(self, export: UsersExport, task_id: int) -> None:
        """Wait for the task; after a timeout (task deleted) the state forgets it."""
        try:
            export.wait(task_id)
        except SpaazaTaskTimeoutError:
            inflight.forget_task(self.stream_state)
            self.flush_state()
            raise

    def _close_window(self, export: UsersExport, task_id: int, window: Window) -> None:
        """Promote the bookmark, write STATE, then delete the delivered task if asked."""
        state = self.stream_state
        before = state.get(inflight.BOOKMARK)
        bookmark = inflight.close_window(state, window, REPLICATION_KEY)
        if bookmark != before:
            self.logger.info("Bookmark %s advances to %s", REPLICATION_KEY, bookmark)
        self.logger.info("Window %s delivered; bookmark %s", window.describe(), bookmark)
        if self.config.get("delete_completed_tasks", True):
            inflight.mark_delivered(state)
            self.flush_state()
            export.discard(task_id, "its file was delivered")
        inflight.forget_task(state)
        self.flush_state()

    def flush_state(self) -> None:
        """Write a STATE message now (the SDK writes one only when its state is dirty)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _read(
        self, path: Path, task_id: int, window: Window, seen: IdSet
    ) -> Iterator[dict[str, Any]]:
        """Yield the file's records in the window not yet emitted, then log the tally."""
        started = time.monotonic()
        emitted = outside = repeated = 0
        latest: str | None = None
        with UsersCsvReader(
            path,
            task_id=task_id,
            on_invalid_row=self.config.get("on_invalid_row", "fail"),
            logger=self.logger,
        ) as reader:
            if reader.extra_columns:
                shaping.add_string_columns(self, reader.extra_columns)
                if self.selected:
                    self._write_schema_message()
            # Records carry created_date as RFC 3339 UTC in one format: compare the text.
            start, end = utc_text(window.start), utc_text(window.end)
            for record in reader:
                created = record.get(REPLICATION_KEY)
                if created and ((start and created < start) or (end and created >= end)):
                    outside += 1
                    continue
                if not seen.add_new(record[PRIMARY_KEY]):  # records.py rejects empty ids
                    repeated += 1
                    continue
                emitted += 1
                latest = created if created and (latest is None or created > latest) else latest
                yield record
            skipped = reader.skipped_rows
        if latest and self.replication_method == REPLICATION_INCREMENTAL:
            latest = self._capped_progress(latest, task_id)
            inflight.note_progress(self.stream_state, latest, REPLICATION_KEY)
        seconds = max(time.monotonic() - started, 1e-6)
        self.logger.info(
            "Emitted %d users from task %d in %.1fs (%.0f rows/s); %d outside the window and "
            "%d already emitted this sync left out, %d invalid rows skipped",
            emitted,
            task_id,
            seconds,
            emitted / seconds,
            outside,
            repeated,
            skipped,
        )
        if not latest:
            self.logger.info("No users in the window %s", window.describe())

    def _capped_progress(self, latest: str, task_id: int) -> str:
        """The file's greatest ``created_date``, but never past the sync's start.

        A user dated in the future (bad data, a local time read as UTC) would otherwise
        carry the bookmark past users created, but not yet indexed, before the next sync's
        lookback reaches back to them. As the SDK does for unsorted streams (its signpost),
        the bookmark stops at the moment the sync began; the future-dated user is sent again
        by each sync until its date has passed.
        """
        signpost = self.get_replication_key_signpost(None)
        cap = utc_text(signpost) if isinstance(signpost, dt.datetime) else None
        if cap is None or latest <= cap:
            return latest
        self.logger.warning(
            "Export task %d holds users created in the future (up to %s); the bookmark "
            "stops at the sync start %s",
            task_id,
            latest,
            cap,
        )
        return cap

    @override
    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """None: the stream has no child streams, so there is no per-record context to make."""
        return ()

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, Any], *, context: Context | None = None
    ) -> None:
        """Nothing per record: ``_read`` hands each file's greatest created_date to the state.

        The SDK would compare every record's replication key with the progress marker; the
        stream already tracks the greatest one per file and notes it once the file was
        emitted (``inflight.note_progress``), which is when it may count anyway.
        """

    @override
    def _generate_record_messages(
        self, record: dict[str, Any]
    ) -> Generator[RecordMessage, None, None]:
        """RECORD messages: selection and stream maps applied as the SDK does (see shaping).

        The deselected fields are found once per sync, not looked up per field per record.
        """
        yield from shaping.record_messages(self, record, version=self._stream_version)

    @override
    def _sync_batches(self, batch_config: BatchConfig, context: Context | None = None) -> None:
        """BATCH files holding what RECORD messages would (see batching), STATE after them.

        Args:
            batch_config: The ``batch_config`` setting.
            context: Stream partition (none for this stream).
        """
        batching.sync_batches(self, batch_config, context)

    def _task_body(self, window: Window) -> dict[str, Any]:
        """The export task body for a window."""
        return build_export_task(
            chain_id=int(self.config["chain_id"]),
            window_start=window.start,
            window_end=window.end,
            segment=segments.SegmentChoice.from_config(self.config),
            now=dt.datetime.now(dt.timezone.utc),
            origin=f"{self._tap.name} {self._tap.plugin_version}",
        )
