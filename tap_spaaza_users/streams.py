"""The users stream: plan the windows, then per window its export task, records, bookmark."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import tempfile
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_spaaza_users.contract import PRIMARY_KEY, REPLICATION_KEY, users_json_schema
from tap_spaaza_users.emission import OVERLAP_FROM_BYTES, WindowEmitter
from tap_spaaza_users.export import UsersExport
from tap_spaaza_users.full_refresh import FullRefreshRun
from tap_spaaza_users.sdk_hooks import HookedStream
from tap_spaaza_users.state import bookmark
from tap_spaaza_users.tasks.ledger import TaskLedger
from tap_spaaza_users.windows import IdSet, Window, plan_sync

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

    from tap_spaaza_users.settings.typed import HasSettings, Settings
    from tap_spaaza_users.state.refresh import FullRefresh


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
    full_refresh: FullRefresh | None = None
    #: While a file is emitted, rows and rows/s are logged this often (``emission``).
    progress_seconds: float = 30.0
    #: Files at least this large are parsed while they download (``emission``).
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
        last = None
        if not self.full_refresh:  # a full refresh starts over
            sdk_value = self.get_starting_replication_key_value(context)
            last = bookmark.starting_bookmark(self.stream_state, sdk_value)
        settings = self.settings
        windows = plan_sync(
            start_date=settings.start_date,
            lookback_minutes=settings.lookback_minutes,
            backfill_window_days=settings.backfill_window_days,
            bookmark=last,
            delivered_before=bookmark.delivered_before(self.stream_state),
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
        work_dir = tempfile.gettempdir()
        self._claim_state()
        delivered_up_to = bookmark.delivered_up_to(self.stream_state)  # before a refresh resets it
        refresh = FullRefreshRun(self)
        self.full_refresh = refresh.start()
        windows = self.plan(context)
        settings = self.settings
        export = UsersExport.from_settings(
            settings,
            user_agent=self.user_agent,
            origin=f"{self.tap_name} {self.plugin_version}",
            logger=self.logger,
        )
        ledger = TaskLedger(
            export,
            self.stream_state,
            horizon=dt.timedelta(hours=settings.task_reuse_hours),
            clean_up=settings.delete_completed_tasks,
            flush=self.flush_state,
            refresh_version=self.full_refresh.version if self.full_refresh else None,
        )
        self._log_plan(export, windows)
        emitter = WindowEmitter(self, export, work_dir=work_dir)
        # Ids emitted this sync, to drop repeats from the lookback overlap and window seams.
        seen = IdSet()
        in_flight = settings.max_tasks_in_flight
        with contextlib.closing(export):
            ledger.sweep(delivered_up_to)
            for index, window in enumerate(windows):
                ahead = windows[index + 1 : index + in_flight]
                task_id = ledger.get_or_create(window, ahead=ahead)
                # A file found unobtainable: its task given up, the window exported afresh once.
                rows = emitter.emit(ledger, task_id, window, ahead, seen)
                task_id = yield from refresh.versioned(rows)
                emitter.close(task_id, window)
                refresh.count(emitter.emitted_in_file)
                ledger.delivered(task_id)
                self.flush_state()
        refresh.complete()

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

    def _claim_state(self) -> None:
        """Check the state is this chain's and selection's (before any request), and name them.

        Raises:
            SpaazaStateError: When the state belongs to another chain.
        """
        choice = self.settings.segment
        selection = bookmark.selection_key(choice.segment_id, list(choice.rules), choice.join)
        if bookmark.claim(self.stream_state, self.settings.chain_id, selection):
            self.logger.warning(
                "The segment settings (segment_id, segment_rules, segment_join) changed since "
                "the state was written: %s is exported from start_date, because the old "
                "bookmark says nothing about these users",
                choice.describe(),
            )

    @override
    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """None: the stream has no child streams, so there is no per-record context to make."""
        return ()
