"""A window's users from its task's file: read as it downloads, kept to the window, bookmarked."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Protocol

from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL

from tap_spaaza_users.contract import REPLICATION_KEY, utc_text
from tap_spaaza_users.download import background
from tap_spaaza_users.errors import SpaazaCorruptExportError, SpaazaFileUnobtainableError
from tap_spaaza_users.export import BOUNDARY_MARGIN
from tap_spaaza_users.logs.fields import log_fields
from tap_spaaza_users.records.reader import UsersCsvReader
from tap_spaaza_users.state import bookmark
from tap_spaaza_users.state.keys import BOOKMARK
from tap_spaaza_users.windows import WindowSelection

if TYPE_CHECKING:
    import io
    import logging
    from collections.abc import Generator, Iterator

    from singer_sdk.helpers.types import Context

    from tap_spaaza_users.export import UsersExport
    from tap_spaaza_users.settings.typed import Settings
    from tap_spaaza_users.tasks.ledger import TaskLedger
    from tap_spaaza_users.windows import IdSet, Window

#: Files at least this large are parsed while they download (the stream's default).
OVERLAP_FROM_BYTES = background.OVERLAP_FROM_BYTES
#: While a file is emitted, the clock is read every this many rows (not per record), to log
#: the rows and rows/s every ``progress_seconds``.
PROGRESS_CHECK_ROWS = 1000
#: A user dated up to this far past our clock is not "in the future" (clocks differ a little).
FUTURE_SLACK = dt.timedelta(minutes=1)


class EmittingStream(Protocol):
    """What emitting a window's users needs of the stream (``streams.UsersStream``)."""

    progress_seconds: float

    @property
    def overlap_from_bytes(self) -> int:
        """Files at least this large are parsed while they download."""
        ...

    @property
    def settings(self) -> Settings:
        """The tap's settings."""
        ...

    @property
    def stream_state(self) -> dict[str, Any]:
        """The stream's state."""
        ...

    @property
    def logger(self) -> logging.Logger:
        """The stream's logger."""
        ...

    @property
    def replication_method(self) -> str:
        """The stream's replication method (INCREMENTAL or FULL_TABLE)."""
        ...

    def get_replication_key_signpost(
        self, context: Context | None = None
    ) -> dt.datetime | Any | None:  # noqa: ANN401 - as the SDK's
        """The moment the sync began: no bookmark goes past it."""
        ...

    def add_string_columns(self, names: list[str]) -> None:
        """Add columns the file brought to the schema, as strings."""
        ...


class WindowEmitter:
    """Emits each window's users from its task's file, then closes the window on the bookmark.

    The export file comes in no particular order: the greatest ``created_date`` emitted is
    noted as the window's progress, and promoted to the bookmark only when the window's whole
    file was emitted (``close``), never past a user the tap skipped as invalid.
    """

    def __init__(self, stream: EmittingStream, export: UsersExport, *, work_dir: str) -> None:
        """Keep the stream, the export serving its files, and the temp dir to spool them in."""
        self._stream = stream
        self._export = export
        #: The temp dir this sync spools export files in, fixed when the sync starts.
        self._work_dir = work_dir
        #: How much wider than the window Spaaza's own filter is, or None when the tap filters
        #: each window's users itself (from the whole selection's file).
        self._server_margin = BOUNDARY_MARGIN if export.segment.server_side_window else None
        #: The earliest ``created_date`` of a user this sync skipped as invalid ("" for one
        #: whose date is unknown, from the start of history): the bookmark stays at or before it.
        self._unvouched_from: str | None = None
        self._outside_warned = False
        #: Users the last file read emitted (counted into a full refresh when its window closes).
        self.emitted_in_file = 0

    @property
    def logger(self) -> logging.Logger:
        """The stream's logger."""
        return self._stream.logger

    def emit(
        self,
        ledger: TaskLedger,
        task_id: int,
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
        before = seen.copy()
        try:
            yield from self._file(task_id, window, seen)
        except (SpaazaFileUnobtainableError, SpaazaCorruptExportError) as exc:
            ledger.give_up(task_id, window, str(exc), afresh=True)
            seen.restore(before)
            task_id = ledger.get_or_create(window, ahead=ahead)
            try:
                yield from self._file(task_id, window, seen)
            except (SpaazaFileUnobtainableError, SpaazaCorruptExportError) as again:
                ledger.give_up(task_id, window, str(again), afresh=False)
                raise
        return task_id

    def close(self, task_id: int, window: Window) -> None:
        """Promote the window's progress to the bookmark (the caller writes the state)."""
        stream_state = self._stream.stream_state
        before = stream_state.get(BOOKMARK)
        end, hold = utc_text(window.end), self._unvouched_from
        held = hold is not None and (end is None or end > hold)
        promoted = bookmark.close_window(
            stream_state, window.end, REPLICATION_KEY, advance_watermark=not held
        )
        if promoted != before:
            self.logger.info("Bookmark %s advances to %s", REPLICATION_KEY, promoted)
        self.logger.info(
            "Window %s delivered; bookmark %s",
            window.describe(),
            promoted,
            extra=log_fields(task_id, (window.start, window.end), bookmark=promoted),
        )

    def _file(self, task_id: int, window: Window, seen: IdSet) -> Iterator[dict[str, Any]]:
        """Emit the window's rows from the task's file while it downloads (``download``)."""
        export = self._export
        settings = export.client.settings
        before_file = seen.copy()
        yield from background.read_while_downloading(
            lambda: export.download_url(task_id),
            lambda source: self._read(
                source,
                task_id,
                WindowSelection(
                    window, seen, server_margin=self._server_margin, earlier=before_file
                ),
            ),
            task_id=task_id,
            min_bytes=self._stream.overlap_from_bytes,
            # The file starts over: so do the ids it emitted this sync, and its own counts.
            on_restart=lambda: seen.restore(before_file),
            logger=self.logger,
            directory=self._work_dir,
            timeout=settings.timeout,
            user_agent=settings.user_agent,
            max_retries=settings.max_retries,
            backoff_base=settings.retry_initial_wait,
            backoff_cap=settings.retry_max_wait,
            deadline_seconds=self._stream.settings.task_timeout_minutes * 60,
        )

    def _read(
        self, source: io.BufferedReader, task_id: int, selection: WindowSelection
    ) -> Iterator[dict[str, Any]]:
        """Yield the file's records in the window not yet emitted, then log the tally."""
        started = time.monotonic()
        with UsersCsvReader(
            source,
            task_id=task_id,
            on_invalid_row=self._stream.settings.on_invalid_row,
            logger=self.logger,
        ) as reader:
            if reader.extra_columns:
                self._stream.add_string_columns(reader.extra_columns)
            said = started
            for emitted, record in enumerate(selection.select(reader), 1):
                yield record
                if not emitted % PROGRESS_CHECK_ROWS:
                    said = self._progress(task_id, emitted, started, said)
            skipped = reader.skipped_rows
            self._hold_for_skipped(reader, selection)
        self._warn_outside(task_id, selection)
        self.emitted_in_file = selection.emitted
        latest = selection.latest
        if self._unvouched_from is not None and latest and latest > self._unvouched_from:
            latest = self._unvouched_from or None
        if latest and self._stream.replication_method == REPLICATION_INCREMENTAL:
            latest = self._capped_progress(latest, task_id)
            bookmark.note_progress(self._stream.stream_state, latest, REPLICATION_KEY)
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
                (selection.window.start, selection.window.end),
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
        if now - said < self._stream.progress_seconds:
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
        signpost = self._stream.get_replication_key_signpost(None)
        cap = utc_text(signpost) if isinstance(signpost, dt.datetime) else None
        if cap is None or latest <= cap:
            return latest
        now = utc_text(dt.datetime.now(dt.timezone.utc) + FUTURE_SLACK)
        if now is not None and latest > now:
            self.logger.warning(
                "Export task %d holds users created in the future (up to %s); the bookmark "
                "stops at the sync start %s",
                task_id,
                latest,
                cap,
            )
        else:  # users who signed up while the sync ran (a long backfill's last window)
            self.logger.info(
                "Export task %d holds users created after this sync started (up to %s); the "
                "bookmark stops at the sync start %s, and the next sync reads them again",
                task_id,
                latest,
                cap,
            )
        return cap
