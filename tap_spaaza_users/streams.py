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
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL

from tap_spaaza_users import batching, inflight, output, refresh, segments, shaping
from tap_spaaza_users.client import ClientSettings, SpaazaClient
from tap_spaaza_users.columns import PRIMARY_KEY, REPLICATION_KEY, users_json_schema
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
from tap_spaaza_users.windows import Window, parse_utc, plan_windows, sync_start

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
        config = self.config
        return SpaazaClient(
            ClientSettings(
                api_url=config.get("api_url") or "https://services-prod.spaaza.com",
                chain_id=int(config["chain_id"]),
                token_id=config["access_token_id"],
                token_secret=config["access_token_secret"],
                user_agent=self.user_agent,
                timeout=float(config.get("request_timeout_seconds", 60)),
                max_retries=int(config.get("max_retries", 5)),
                retry_initial_wait=float(config.get("retry_initial_wait_seconds", 1)),
                retry_max_wait=float(config.get("retry_max_wait_seconds", 60)),
            ),
            self.logger,
        )

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

    def window_start(self, context: Context | None) -> dt.datetime | None:
        """The earliest ``created_date`` this sync asks for.

        The bookmark minus ``lookback_minutes`` (the export index lags behind), never before
        ``start_date`` nor before the end of the last backfill window delivered;
        ``start_date`` on a first sync; None (all users) without either.

        Args:
            context: Stream partition (none for this stream).

        Returns:
            The window start, in UTC.
        """
        # A full refresh starts from start_date (or where an interrupted one stopped).
        bookmark = None if self.full_refresh else self.get_starting_replication_key_value(context)
        own = self.stream_state.get(inflight.BOOKMARK)
        if not self.full_refresh and own and "replication_key" not in self.stream_state:
            # The SDK ignores a bookmark whose key is not named; it can only be ours.
            bookmark = max(parse_utc(str(own)), parse_utc(str(bookmark or own))).isoformat()
        return sync_start(
            start_date=self._start_date(),
            bookmark=parse_utc(str(bookmark)) if bookmark else None,
            lookback=self._lookback(),
            delivered_before=inflight.delivered_before(self.stream_state),
        )

    def plan(self, context: Context | None) -> list[Window]:
        """This sync's export windows: one, or ``backfill_window_days`` windows.

        Args:
            context: Stream partition (none for this stream).

        Returns:
            The windows, oldest first.
        """
        days = self.config.get("backfill_window_days")
        return plan_windows(
            self.window_start(context),
            now=dt.datetime.now(dt.timezone.utc),
            lookback=self._lookback(),
            days=int(days) if days else None,
        )

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
            export = UsersExport(client, self._poll_settings(), self.logger)
            for window in windows:
                yield from self._sync_window(export, window, Path(workdir), seen)
        refresh.complete(self, self.full_refresh)

    def _sync_window(
        self, export: UsersExport, window: Window, workdir: Path, seen: IdSet
    ) -> Iterator[dict[str, Any]]:
        """Obtain the window's finished task, emit its file, then close the window."""
        task_id = self._finished_task(export, window)
        result = download_export(
            lambda: export.download_url(task_id),
            workdir / f"User_Export-{task_id}.csv",
            timeout=float(self.config.get("request_timeout_seconds", 60)),
            user_agent=self.user_agent,
            logger=self.logger,
            max_retries=int(self.config.get("max_retries", 5)),
            backoff_base=float(self.config.get("retry_initial_wait_seconds", 1)),
            backoff_cap=float(self.config.get("retry_max_wait_seconds", 60)),
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
            self._adopt_columns(reader.extra_columns)
            # Records carry created_date as RFC 3339 UTC in one format: compare the text.
            start, end = shaping.utc_text(window.start), shaping.utc_text(window.end)
            for record in reader:
                created = record.get(REPLICATION_KEY)
                if created and ((start and created < start) or (end and created >= end)):
                    outside += 1
                    continue
                user_id = record.get(PRIMARY_KEY)
                if user_id is not None and not seen.add_new(user_id):
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
        cap = shaping.utc_text(signpost) if isinstance(signpost, dt.datetime) else None
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

    def _adopt_columns(self, extra_columns: list[str]) -> None:
        """Add the file's unknown columns (strings) to the schema and re-send SCHEMA."""
        if not extra_columns:
            return
        fragment = users_json_schema(extra_columns)["properties"]
        added = {name: fragment[name] for name in extra_columns}
        schemas = [self.schema, self._input_schema] + [
            stream_map.transformed_schema
            for stream_map in self.stream_maps
            if isinstance(stream_map, SameRecordTransform)
        ]
        for schema in schemas:
            if schema is not None:
                for name, prop in added.items():
                    schema.setdefault("properties", {}).setdefault(name, dict(prop))
        self.logger.info("Schema extended with the file's extra columns: %s", extra_columns)
        if self.selected:
            self._write_schema_message()

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

    def _poll_settings(self) -> PollSettings:
        """Poll interval, cap and timeout from the settings."""
        return PollSettings(
            interval=float(self.config.get("poll_interval_seconds", 5)),
            max_interval=float(self.config.get("poll_max_interval_seconds", 60)),
            timeout=float(self.config.get("task_timeout_minutes", 180)) * 60,
        )

    def _lookback(self) -> dt.timedelta:
        """The ``lookback_minutes`` setting."""
        return dt.timedelta(minutes=float(self.config.get("lookback_minutes", 60)))

    def _start_date(self) -> dt.datetime | None:
        """The ``start_date`` setting as an aware UTC datetime, if set."""
        value = self.config.get("start_date")
        return parse_utc(str(value)) if value else None
