"""The users stream: plan the windows, then per window its export task, records, bookmark."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL

from tap_spaaza_users import state
from tap_spaaza_users.contract import PRIMARY_KEY, REPLICATION_KEY, users_json_schema, utc_text
from tap_spaaza_users.download.background import OVERLAP_FROM_BYTES, read_while_downloading
from tap_spaaza_users.errors import (
    SpaazaCorruptExportError,
    SpaazaFileUnobtainableError,
    SpaazaFullRefreshRefusedError,
)
from tap_spaaza_users.export import BOUNDARY_MARGIN, UsersExport
from tap_spaaza_users.logs import export_times
from tap_spaaza_users.logs.fields import log_fields
from tap_spaaza_users.records.reader import UsersCsvReader
from tap_spaaza_users.sdk_hooks import HookedStream
from tap_spaaza_users.tasks.ledger import TaskLedger
from tap_spaaza_users.windows import IdSet, Window, WindowSelection, plan_sync

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    import io
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_spaaza_users.settings import HasSettings, Settings


class UsersStream(HookedStream):
    """Every user of the chain, incremental on ``created_date``.

    The export file comes in no particular order, so the stream is unsorted: it keeps the
    greatest ``created_date`` emitted as a progress marker, and promotes it to the bookmark
    only when a window's whole file was emitted. An interrupted sync leaves the bookmark as
    it was; which export task serves a window, across runs, is the ledger's decision
    (``tasks.TaskLedger``, described in ``docs/task-protocol.md``).
    """

    name = "users"
    primary_keys: ClassVar[list[str]] = [PRIMARY_KEY]
    replication_key = REPLICATION_KEY
    is_sorted = False
    # records/ types every value itself; the SDK's conformance has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: This sync's full refresh (``full_refresh_days``), or None for an incremental sync.
    full_refresh: state.FullRefresh | None = None
    #: The temp dir this sync spools export files in, fixed when the sync starts.
    _work_dir: str | None = None
    #: Why this sync's full refresh was refused its ACTIVATE_VERSION, or None.
    refused_refresh: str | None = None
    #: The version of the first full refresh's opening ACTIVATE_VERSION, sent before its
    #: first record (never for an empty export).
    _opening_version: int | None = None
    #: Users the last file read emitted (counted into a full refresh when its window closes).
    _emitted_in_file: int = 0
    #: While a file is emitted, rows and rows/s are logged this often (checked every
    #: ``PROGRESS_CHECK_ROWS`` rows, so the clock is not read per record).
    progress_seconds: float = 30.0
    PROGRESS_CHECK_ROWS = 1000
    #: The earliest ``created_date`` of a user this sync skipped as invalid ("" for one whose
    #: date is unknown, from the start of history): the bookmark stays at or before it.
    _unvouched_from: str | None = None
    #: How much wider than the window Spaaza's own filter is, or None when the tap filters
    #: each window's users itself (from the whole selection's file).
    _server_margin: dt.timedelta | None = None
    _outside_warned: bool = False
    #: Files at least this large are parsed while they download (see ``_emit``).
    overlap_from_bytes: ClassVar[int] = OVERLAP_FROM_BYTES

    def __init__(self, tap: Any) -> None:  # noqa: ANN401
        """Create the stream with its schema from the column list; the tap holds the settings."""
        super().__init__(tap, schema=users_json_schema())
        self._owner: HasSettings = tap

    @property
    def settings(self) -> Settings:
        """The tap's settings, typed once by the tap (the stream never reads the raw config)."""
        return self._owner.settings

    @property
    def user_agent(self) -> str:
        """The User-Agent of every request: the setting, or the tap's name and version."""
        return self.settings.user_agent or f"{self.tap_name}/{self.plugin_version}"

    def plan(self, context: Context | None) -> list[Window]:
        """This sync's export windows, oldest first, from the settings and the state.

        A selection Spaaza cannot window (``segment_id``, ``segment_join: any``) is exported
        whole by every task, so a backfill of it is one window: one export per sync.
        """
        bookmark = None
        if not self.full_refresh:  # a full refresh starts over
            sdk_value = self.get_starting_replication_key_value(context)
            bookmark = state.starting_bookmark(self.stream_state, sdk_value)
        settings = self.settings
        windows = plan_sync(
            start_date=settings.start_date,
            lookback_minutes=settings.lookback_minutes,
            backfill_window_days=settings.backfill_window_days,
            bookmark=bookmark,
            delivered_before=state.delivered_before(self.stream_state),
            now=dt.datetime.now(dt.timezone.utc),
        )
        choice = settings.segment
        if len(windows) > 1 and not choice.server_side_window:
            # Each task would export the whole selection again: one export serves every window.
            self.logger.info(
                "backfill_window_days is set, but %s cannot be exported by window (Spaaza "
                "takes no created_date rule with it): one export for the whole span instead "
                "of %d, the bookmark applied by the tap",
                choice.describe(),
                len(windows),
            )
            windows = [Window(windows[0].start, windows[-1].end)]
        return windows

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Plan the windows, sweep, then per window: its task, its rows, the bookmark.

        The task of each window comes from the ledger (``tasks.TaskLedger``; the protocol is
        in ``docs/task-protocol.md``).

        Args:
            context: Stream partition (none for this stream).

        Yields:
            Typed user records, each user once per sync.
        """
        # The temp dir as it is when the sync starts: if it vanishes later, the spool fails
        # in one line instead of Python quietly falling back to another directory.
        self._work_dir = tempfile.gettempdir()
        self._claim_state()
        delivered_up_to = state.delivered_up_to(self.stream_state)  # before a refresh resets it
        self.full_refresh = self._start_full_refresh()
        windows = self.plan(context)
        settings = self.settings
        export = UsersExport.from_settings(
            settings,
            user_agent=self.user_agent,
            origin=f"{self.tap_name} {self.plugin_version}",
            logger=self.logger,
        )
        export.durations = export_times.history(self.stream_state)
        ledger = TaskLedger(
            export,
            self.stream_state,
            horizon=dt.timedelta(hours=settings.task_reuse_hours),
            clean_up=settings.delete_completed_tasks,
            flush=self.flush_state,
            refresh_version=self.full_refresh.version if self.full_refresh else None,
        )
        self._log_plan(export, windows)
        # Ids emitted this sync, to drop repeats from the lookback overlap and window seams.
        seen = IdSet()
        self._server_margin = BOUNDARY_MARGIN if export.segment.server_side_window else None
        self._unvouched_from = None
        self._outside_warned = False
        in_flight = settings.max_tasks_in_flight
        with contextlib.closing(export):
            ledger.sweep(delivered_up_to)
            for index, window in enumerate(windows):
                ahead = windows[index + 1 : index + in_flight]
                task_id = yield from self._emit_window(ledger, export, window, ahead, seen)
                self._close_window(task_id, window)
                ledger.delivered(task_id)
                self.flush_state()
        self._complete_full_refresh(self.full_refresh)
        if self.refused_refresh is not None:
            msg = (
                f"{self.refused_refresh}. Every user exported was loaded and the state saved; "
                "the sync exits with status 1 so that this is noticed (see the warning above)."
            )
            raise SpaazaFullRefreshRefusedError(msg)

    def _emit_window(
        self,
        ledger: TaskLedger,
        export: UsersExport,
        window: Window,
        ahead: list[Window],
        seen: IdSet,
    ) -> Generator[dict[str, Any], None, int]:
        """Emit the window's rows from its task's file; return the task that served it.

        A task whose file proved unobtainable (gone from storage, no download URL although
        DONE, corrupt at every download) is given up (``TaskLedger.give_up``: deleted, never
        adopted again) and the window exported afresh, once; should the fresh task's file
        fail too, that task is given up as well and the error ends the sync, so the next
        run exports afresh. Rows already emitted from the first file are emitted again.
        """
        task_id = ledger.get_or_create(window, ahead=ahead)
        before = seen.copy()
        try:
            yield from self._emit_versioned(export, task_id, window, seen)
        except (SpaazaFileUnobtainableError, SpaazaCorruptExportError) as exc:
            ledger.give_up(task_id, window, str(exc), afresh=True)
            seen.restore(before)
            task_id = ledger.get_or_create(window, ahead=ahead)
            try:
                yield from self._emit_versioned(export, task_id, window, seen)
            except (SpaazaFileUnobtainableError, SpaazaCorruptExportError) as again:
                ledger.give_up(task_id, window, str(again), afresh=False)
                raise
        return task_id

    def _emit_versioned(
        self, export: UsersExport, task_id: int, window: Window, seen: IdSet
    ) -> Iterator[dict[str, Any]]:
        """``_emit``, the first full refresh's opening ACTIVATE_VERSION before its first row."""
        for record in self._emit(export, task_id, window, seen):
            if self._opening_version is not None:
                self.activate_version(self._opening_version)
                self._opening_version = None
            yield record

    def _log_plan(self, export: UsersExport, windows: list[Window]) -> None:
        """Say where the window is applied, and how many windows a backfill takes."""
        if not export.segment.server_side_window:
            self.logger.info(
                "The bookmark is applied on our side: %s is exported whole each sync, then "
                "users created before %s are left out",
                export.segment.describe(),
                windows[0].start or "the start (no bookmark or start_date yet, so none)",
            )
        if len(windows) > 1:
            span = Window(windows[0].start, windows[-1].end)
            self.logger.info(
                "Backfill in %d windows, from %s (the first window: %s)",
                len(windows),
                span.describe(),
                windows[0].describe(),
            )

    def _emit(
        self, export: UsersExport, task_id: int, window: Window, seen: IdSet
    ) -> Iterator[dict[str, Any]]:
        """Emit the window's rows from the task's file while it downloads (``download``)."""
        settings = export.client.settings
        before_file = seen.copy()
        yield from read_while_downloading(
            lambda: export.download_url(task_id),
            lambda source: self._read(
                source,
                task_id,
                WindowSelection(
                    window, seen, server_margin=self._server_margin, earlier=before_file
                ),
            ),
            task_id=task_id,
            min_bytes=self.overlap_from_bytes,
            # The file starts over: so do the ids it emitted this sync, and its own counts.
            on_restart=lambda: seen.restore(before_file),
            logger=self.logger,
            directory=self._work_dir,
            timeout=settings.timeout,
            user_agent=settings.user_agent,
            max_retries=settings.max_retries,
            backoff_base=settings.retry_initial_wait,
            backoff_cap=settings.retry_max_wait,
            deadline_seconds=self.settings.task_timeout_minutes * 60,
        )

    def _claim_state(self) -> None:
        """Check the state is this chain's and selection's (before any request), and name them.

        Raises:
            SpaazaStateError: When the state belongs to another chain.
        """
        choice = self.settings.segment
        selection = state.selection_key(choice.segment_id, list(choice.rules), choice.join)
        if state.claim(self.stream_state, self.settings.chain_id, selection):
            self.logger.warning(
                "The segment settings (segment_id, segment_rules, segment_join) changed since "
                "the state was written: %s is exported from start_date, because the old "
                "bookmark says nothing about these users",
                choice.describe(),
            )

    def _close_window(self, task_id: int, window: Window) -> None:
        """Promote the window's progress to the bookmark (the caller writes the state)."""
        stream_state = self.stream_state
        before = stream_state.get(state.BOOKMARK)
        end, hold = utc_text(window.end), self._unvouched_from
        held = hold is not None and (end is None or end > hold)
        bookmark = state.close_window(
            stream_state, window, REPLICATION_KEY, advance_watermark=not held
        )
        if bookmark != before:
            self.logger.info("Bookmark %s advances to %s", REPLICATION_KEY, bookmark)
        self.logger.info(
            "Window %s delivered; bookmark %s",
            window.describe(),
            bookmark,
            extra=log_fields(task_id, window, bookmark=bookmark),
        )
        if self.full_refresh is not None:
            state.note_refresh_users(stream_state, self._emitted_in_file)

    def _read(
        self, source: io.BufferedReader, task_id: int, selection: WindowSelection
    ) -> Iterator[dict[str, Any]]:
        """Yield the file's records in the window not yet emitted, then log the tally."""
        started = time.monotonic()
        with UsersCsvReader(
            source,
            task_id=task_id,
            on_invalid_row=self.settings.on_invalid_row,
            logger=self.logger,
        ) as reader:
            if reader.extra_columns:
                self.add_string_columns(reader.extra_columns)
            said = started
            for emitted, record in enumerate(selection.select(reader), 1):
                yield record
                if not emitted % self.PROGRESS_CHECK_ROWS:
                    said = self._progress(task_id, emitted, started, said)
            skipped = reader.skipped_rows
            self._hold_for_skipped(reader, selection)
        self._warn_outside(task_id, selection)
        self._emitted_in_file = selection.emitted
        latest = selection.latest
        if self._unvouched_from is not None and latest and latest > self._unvouched_from:
            latest = self._unvouched_from or None
        if latest and self.replication_method == REPLICATION_INCREMENTAL:
            latest = self._capped_progress(latest, task_id)
            state.note_progress(self.stream_state, latest, REPLICATION_KEY)
        seconds = max(time.monotonic() - started, 1e-6)
        self.logger.info(
            "Emitted %d users from task %d in %.1fs (%.0f rows/s), %d of them repeated in the "
            "file (the later, newer copy emitted too) and %d outside the window that Spaaza "
            "returned; %d outside the window and %d already emitted this sync left out, %d "
            "invalid rows skipped",
            selection.emitted,
            task_id,
            seconds,
            selection.emitted / seconds,
            selection.repeated_in_file,
            selection.kept_outside,
            selection.outside,
            selection.repeated,
            skipped,
            extra=log_fields(
                task_id,
                selection.window,
                rows=selection.emitted,
                seconds=seconds,
                rows_per_second=selection.emitted / seconds,
                rows_skipped=skipped,
            ),
        )
        if not latest:
            self.logger.info("No users in the window %s", selection.window.describe())

    def _hold_for_skipped(self, reader: UsersCsvReader, selection: WindowSelection) -> None:
        """Hold the bookmark at the earliest ``created_date`` of a row skipped as invalid.

        The bookmark never passes a user the tap dropped: this sync and the ones after it
        keep it at or before that user, so the next sync exports the user again (and again,
        until Spaaza's file holds a readable row for it). A skipped row whose date cannot be
        read holds the bookmark at the window's start. A row the selection would have left
        out anyway (before the window, filtered by the tap) holds nothing.
        """
        found = reader.unvouched_from
        if found is None:
            return
        start = utc_text(selection.window.start) or ""
        if found and found < start and selection.server_margin is None:
            return
        hold = found or start
        if self._unvouched_from is None or hold < self._unvouched_from:
            self._unvouched_from = hold
        lines = ", ".join(map(str, reader.skipped_lines))
        if reader.skipped_rows > len(reader.skipped_lines):
            lines += ", ..."
        self.logger.warning(
            "Export task %d: %d rows left out as invalid (lines %s); the bookmark stays at or "
            "before %s so that the next sync exports these users again",
            reader.task_id,
            reader.skipped_rows,
            lines,
            self._unvouched_from or "where it was",
        )

    def _warn_outside(self, task_id: int, selection: WindowSelection) -> None:
        """Once a sync: users Spaaza returned outside its own window filter (they were emitted)."""
        if not selection.kept_outside or self._outside_warned:
            return
        self._outside_warned = True
        self.logger.warning(
            "Export task %d: %d users have a created_date outside the window %s that Spaaza "
            "filtered on; they are emitted anyway. The furthest lies %s beyond it, which "
            "suggests the file's created_date is local time (about %s), not UTC",
            task_id,
            selection.kept_outside,
            selection.window.describe(),
            selection.furthest_outside,
            selection.suggested_offset(),
        )

    def _progress(self, task_id: int, emitted: int, started: float, said: float) -> float:
        """Log rows emitted so far and the rate when ``progress_seconds`` have passed."""
        now = time.monotonic()
        if now - said < self.progress_seconds:
            return said
        rate = emitted / max(now - started, 1e-6)
        self.logger.info(
            "Emitting task %d: %d users so far (%.0f rows/s)",
            task_id,
            emitted,
            rate,
            extra=log_fields(task_id, rows=emitted, rows_per_second=rate),
        )
        return now

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

    # Periodic full refresh: the SDK messages around it (the state's side is in state.py).

    def _start_full_refresh(self) -> state.FullRefresh | None:
        """Begin (or resume) the sync's full refresh if one is due, and say so in the log.

        Its RECORD messages carry the refresh's version. The first full export of a stream
        also opens with ACTIVATE_VERSION (just before its first record: never for an empty
        export), so a target creates the versioned table at once; a later refresh does not,
        because a target that honours it would drop (or mark deleted) every row it holds
        while the refresh is still being exported. BATCH files
        carry no version, so in BATCH mode every user is re-exported but no ACTIVATE_VERSION
        is sent and deletions are not propagated.
        """
        days = self.settings.full_refresh_days
        last = self.stream_state.get(state.LAST_FULL_REFRESH)
        now = dt.datetime.now(dt.timezone.utc)
        refresh = state.begin_full_refresh(self.stream_state, days, now)
        self.record_version = None
        self.refused_refresh = None
        self._opening_version = None
        if refresh is None:
            return None
        self.logger.info(
            "%s full refresh (version %d; full_refresh_days %s, last full refresh %s): every "
            "user is exported, not only the increment",
            "Resuming the" if refresh.resumed else "Starting a",
            refresh.version,
            days,
            last or "never",
        )
        if self.settings.batch:
            self.logger.warning(
                "BATCH mode: the full refresh re-exports every user, but batch files carry no "
                "table version, so no ACTIVATE_VERSION is sent and deleted users stay in the "
                "target"
            )
            return refresh
        self.record_version = refresh.version
        if refresh.first:
            self._opening_version = refresh.version
        return refresh

    def _complete_full_refresh(self, refresh: state.FullRefresh | None) -> None:
        """After the last record of a full refresh: ACTIVATE_VERSION, then ``last_full_refresh``.

        ACTIVATE_VERSION removes every user the refresh did not hold, so an empty or shrunken
        refresh (see ``state.refusal``) is refused it: its records were emitted (upserts lose
        nothing), ``last_full_refresh`` stays so the next sync runs the refresh anew, one
        WARNING says why and how to accept a real shrink, and ``get_records`` then ends the
        sync with an error (exit status 1, after the final STATE), so that schedulers notice.
        """
        if refresh is None:
            return
        activating = self.record_version == refresh.version
        refused = state.refusal(self.stream_state, self.settings.full_refresh_min_ratio)
        if activating and refused is not None:
            self._refuse_full_refresh(refresh, refused)
            return
        if activating and not state.refresh_users(self.stream_state):
            activating = False
            self.logger.info(
                "The full refresh holds no user: no ACTIVATE_VERSION is sent (an empty export "
                "never removes users from the target)"
            )
        if activating:
            self.activate_version(refresh.version)
            self.logger.info(
                "ACTIVATE_VERSION %d sent: targets that honour it remove users not re-exported",
                refresh.version,
            )
        last = state.finish_full_refresh(self.stream_state, refresh)
        self.logger.info("Full refresh delivered whole; last_full_refresh is %s", last)
        self.flush_state()

    def _refuse_full_refresh(self, refresh: state.FullRefresh, reason: str) -> None:
        """Send no ACTIVATE_VERSION for a full refresh that is not plausibly complete."""
        last = self.stream_state.get(state.LAST_FULL_REFRESH)
        state.refuse_full_refresh(self.stream_state)
        self.flush_state()
        self.refused_refresh = (
            f"The full refresh (version {refresh.version}) was refused its ACTIVATE_VERSION: "
            f"{reason}"
        )
        self.logger.warning(
            "%s. Its users were loaded (upserted), but no ACTIVATE_VERSION was sent, so the "
            "target deletes nobody, and last_full_refresh stays %s: the next sync runs the "
            "full refresh again. An empty or markedly smaller export is more often a "
            "transient fault than a real loss of users. If the chain really shrank, run one "
            "sync with full_refresh_min_ratio 0 to accept it (an empty export is never "
            "accepted: remove the users from the target yourself)",
            self.refused_refresh,
            last or "unset",
        )
