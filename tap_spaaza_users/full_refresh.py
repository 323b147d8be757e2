"""The periodic full refresh's messages: its table version, its ACTIVATE_VERSION, or its refusal."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from tap_spaaza_users.errors import SpaazaFullRefreshRefusedError
from tap_spaaza_users.state.keys import LAST_FULL_REFRESH
from tap_spaaza_users.state.refresh import (
    FullRefresh,
    begin_full_refresh,
    finish_full_refresh,
    note_refresh_users,
    refresh_users,
    refusal,
    refuse_full_refresh,
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Generator

    from tap_spaaza_users.settings.typed import Settings

Record = TypeVar("Record")
Result = TypeVar("Result")


class RefreshingStream(Protocol):
    """What a full refresh needs of its stream (``streams.UsersStream``)."""

    record_version: int | None

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

    def activate_version(self, version: int) -> None:
        """Write an ACTIVATE_VERSION message."""
        ...

    def flush_state(self) -> None:
        """Write a STATE message now."""
        ...


class FullRefreshRun:
    """This sync's full refresh, if one is due: the SDK messages around it.

    The state's side is in ``state/refresh.py``. Its RECORD messages carry the refresh's
    version. The first full export of a stream also opens with ACTIVATE_VERSION (just before
    its first record: never for an empty export), so a target creates the versioned table at
    once; a later refresh does not, because a target that honours it would drop (or mark
    deleted) every row it holds while the refresh is still being exported. BATCH files carry
    no version, so in BATCH mode every user is re-exported but no ACTIVATE_VERSION is sent
    and deletions are not propagated.
    """

    def __init__(self, stream: RefreshingStream) -> None:
        """Keep the stream the refresh's messages are written to."""
        self._stream = stream
        #: This sync's full refresh (``full_refresh_days``), or None for an incremental sync.
        self.refresh: FullRefresh | None = None
        #: Why this sync's full refresh was refused its ACTIVATE_VERSION, or None.
        self.refused: str | None = None
        #: The version of the first full refresh's opening ACTIVATE_VERSION, sent before its
        #: first record (never for an empty export).
        self._opening_version: int | None = None

    def start(self) -> FullRefresh | None:
        """Begin (or resume) the sync's full refresh if one is due, and say so in the log."""
        stream = self._stream
        days = stream.settings.full_refresh_days
        last = stream.stream_state.get(LAST_FULL_REFRESH)
        now = dt.datetime.now(dt.timezone.utc)
        refresh = self.refresh = begin_full_refresh(stream.stream_state, days, now)
        stream.record_version = None
        self.refused = None
        self._opening_version = None
        if refresh is None:
            return None
        stream.logger.info(
            "%s full refresh (version %d; full_refresh_days %s, last full refresh %s): every "
            "user is exported, not only the increment",
            "Resuming the" if refresh.resumed else "Starting a",
            refresh.version,
            days,
            last or "never",
        )
        if stream.settings.batch:
            stream.logger.warning(
                "BATCH mode: the full refresh re-exports every user, but batch files carry no "
                "table version, so no ACTIVATE_VERSION is sent and deleted users stay in the "
                "target"
            )
            return refresh
        stream.record_version = refresh.version
        if refresh.first:
            self._opening_version = refresh.version
        return refresh

    def versioned(
        self, records: Generator[Record, None, Result]
    ) -> Generator[Record, None, Result]:
        """The records, the first full refresh's opening ACTIVATE_VERSION before the first."""
        while self._opening_version is not None:
            try:
                record = next(records)
            except StopIteration as done:
                return cast("Result", done.value)
            self._stream.activate_version(self._opening_version)
            self._opening_version = None
            yield record
        return (yield from records)

    def count(self, users: int) -> None:
        """Count a closed window's users into the full refresh, if this sync runs one."""
        if self.refresh is not None:
            note_refresh_users(self._stream.stream_state, users)

    def complete(self) -> None:
        """After the last record of a full refresh: ACTIVATE_VERSION, then ``last_full_refresh``.

        ACTIVATE_VERSION removes every user the refresh did not hold, so an empty or shrunken
        refresh (see ``state.refresh.refusal``) is refused it: its records were emitted
        (upserts lose nothing), ``last_full_refresh`` stays so the next sync runs the refresh
        anew, one WARNING says why and how to accept a real shrink, and the sync then ends
        with an error (exit status 1, after the final STATE), so that schedulers notice.

        Raises:
            SpaazaFullRefreshRefusedError: When the refresh was refused its ACTIVATE_VERSION.
        """
        refresh, stream = self.refresh, self._stream
        if refresh is None:
            return
        activating = stream.record_version == refresh.version
        refused = refusal(stream.stream_state, stream.settings.full_refresh_min_ratio)
        if activating and refused is not None:
            self._refuse(refresh, refused)
            msg = (
                f"{self.refused}. Every user exported was loaded and the state saved; "
                "the sync exits with status 1 so that this is noticed (see the warning above)."
            )
            raise SpaazaFullRefreshRefusedError(msg)
        if activating and not refresh_users(stream.stream_state):
            activating = False
            stream.logger.info(
                "The full refresh holds no user: no ACTIVATE_VERSION is sent (an empty export "
                "never removes users from the target)"
            )
        if activating:
            stream.activate_version(refresh.version)
            stream.logger.info(
                "ACTIVATE_VERSION %d sent: targets that honour it remove users not re-exported",
                refresh.version,
            )
        last = finish_full_refresh(stream.stream_state, refresh)
        stream.logger.info("Full refresh delivered whole; last_full_refresh is %s", last)
        stream.flush_state()

    def _refuse(self, refresh: FullRefresh, reason: str) -> None:
        """Send no ACTIVATE_VERSION for a full refresh that is not plausibly complete."""
        stream = self._stream
        last = stream.stream_state.get(LAST_FULL_REFRESH)
        refuse_full_refresh(stream.stream_state)
        stream.flush_state()
        self.refused = (
            f"The full refresh (version {refresh.version}) was refused its ACTIVATE_VERSION: "
            f"{reason}"
        )
        stream.logger.warning(
            "%s. Its users were loaded (upserted), but no ACTIVATE_VERSION was sent, so the "
            "target deletes nobody, and last_full_refresh stays %s: the next sync runs the "
            "full refresh again. An empty or markedly smaller export is more often a "
            "transient fault than a real loss of users. If the chain really shrank, run one "
            "sync with full_refresh_min_ratio 0 to accept it (an empty export is never "
            "accepted: remove the users from the target yourself)",
            self.refused,
            last or "unset",
        )
