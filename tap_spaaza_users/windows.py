"""Export windows: where a sync starts, how a long history splits, which records each keeps.

The ids a sync emitted (``IdSet``) are kept here too: they decide which records a window keeps.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import PRIMARY_KEY, REPLICATION_KEY, parse_utc, utc_text

UTC = dt.timezone.utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


@dataclass(frozen=True)
class Window:
    """Users created in ``[start, end)``; ``start`` None means all history, ``end`` None up to now.

    Windows are half-open, so a user created exactly at a seam belongs to the later window
    only. The export rule asks the server for a little more on each side (its rules are
    strict or inclusive, and whole seconds); the stream keeps exactly ``[start, end)``.
    """

    start: dt.datetime | None
    end: dt.datetime | None = None

    def contains(self, created: str | dt.datetime) -> bool:
        """Whether a user created at ``created`` belongs to this window.

        Args:
            created: The user's ``created_date``: a moment, or a record's RFC 3339 UTC text
                (such texts compare like the moments they stand for, so none is parsed).

        Returns:
            True when ``start <= created < end`` (missing bounds are open).
        """
        text = (
            created if isinstance(created, str) else created.astimezone(dt.timezone.utc).isoformat()
        )
        start, end = self._bounds
        return (start is None or text >= start) and (end is None or text < end)

    @functools.cached_property
    def _bounds(self) -> tuple[str | None, str | None]:
        """The bounds as records write date-times."""
        return utc_text(self.start), utc_text(self.end)

    def key(self) -> dict[str, str | None]:
        """The window as its task key holds it (``tasks.tags.task_key``), for the next run."""
        return {"window_start": utc_text(self.start), "window_end": utc_text(self.end)}

    def describe(self) -> str:
        """The window for log lines."""
        start = utc_text(self.start) or "the beginning"
        return f"{start} to {utc_text(self.end) or 'now'}"


def sync_start(
    *,
    start_date: dt.datetime | None,
    bookmark: dt.datetime | None,
    lookback: dt.timedelta,
    delivered_before: dt.datetime | None = None,
) -> dt.datetime | None:
    """The earliest ``created_date`` a sync asks for.

    The bookmark minus the lookback (the export index lags), but never before ``start_date``
    and never before ``delivered_before``: a backfill window is only closed when its end
    was older than the lookback when it was exported, so everything before that end has
    been delivered. None means all users.

    Args:
        start_date: The ``start_date`` setting.
        bookmark: The greatest ``created_date`` delivered so far.
        lookback: The ``lookback_minutes`` setting.
        delivered_before: The end of the last backfill window delivered, if any.

    Returns:
        The start, or None for all history.
    """
    candidates = [
        moment
        for moment in (start_date, bookmark - lookback if bookmark else None, delivered_before)
        if moment is not None
    ]
    return max(candidates) if candidates else None


def plan_sync(  # noqa: PLR0913 - keyword-only, each a fact of the plan
    *,
    start_date: dt.datetime | None,
    lookback_minutes: float,
    backfill_window_days: int | None,
    bookmark: dt.datetime | None,
    delivered_before: dt.datetime | None,
    now: dt.datetime,
) -> list[Window]:
    """A sync's export windows, from the settings and where the last sync got to.

    Args:
        start_date: The ``start_date`` setting, if any.
        lookback_minutes: The ``lookback_minutes`` setting.
        backfill_window_days: The ``backfill_window_days`` setting (None: one window).
        bookmark: The greatest ``created_date`` delivered (None on a first sync or a full
            refresh).
        delivered_before: The backfill watermark from the state, if any.
        now: The current time.

    Returns:
        The windows, oldest first: one, or ``backfill_window_days`` windows.
    """
    lookback = dt.timedelta(minutes=lookback_minutes)
    start = sync_start(
        start_date=start_date,
        bookmark=bookmark,
        lookback=lookback,
        delivered_before=delivered_before,
    )
    return plan_windows(start, now=now, lookback=lookback, days=backfill_window_days)


def plan_windows(
    start: dt.datetime | None,
    *,
    now: dt.datetime,
    lookback: dt.timedelta,
    days: int | None,
) -> list[Window]:
    """Split ``[start, now)`` into windows of ``days`` days, the last one open-ended.

    A window is closed only when its end is older than ``now - lookback``: users created
    before such an end are all indexed, so the end can become ``delivered_before``. The
    grid starts at ``start``, so a resumed backfill (which starts at ``delivered_before``,
    a grid point) meets the same windows again and can reuse the task it left running.

    Args:
        start: The sync start (None: all history, one window).
        now: The current time.
        lookback: The ``lookback_minutes`` setting.
        days: The ``backfill_window_days`` setting (None or 0: one window).

    Returns:
        The windows, oldest first.
    """
    if start is None or not days:
        return [Window(start)]
    step = dt.timedelta(days=days)
    horizon = now - lookback
    windows = []
    low = start
    while low + step <= horizon:
        windows.append(Window(low, low + step))
        low += step
    windows.append(Window(low))
    return windows


class WindowSelection:
    """The records of a window's file that a sync emits: inside the window, new to the sync.

    The file may hold users outside the window, and users an earlier file of this sync
    already emitted (the lookback overlap, window seams): those are left out and counted. A
    user the file itself repeats is emitted again: the later row is the newer one, and
    targets upsert by key, so the newest is the one they keep. It keeps the greatest
    ``created_date`` it let through, for the bookmark, never past the window's end.

    Users outside the window are all left out when the tap filters the selection itself
    (``server_margin`` None: the file is the whole selection). When Spaaza applied the
    window's filter (widened by ``server_margin`` on each side, so that no seam user is
    lost), the users in that margin are left out (they belong to the next window or were
    delivered before), but a user Spaaza returned from beyond it is emitted: the file's
    dates disagree with the filter (local time read as UTC, say). ``kept_outside`` counts
    those and ``furthest_outside`` is how far beyond the window the furthest lies.
    """

    def __init__(
        self,
        window: Window,
        seen: IdSet,
        *,
        server_margin: dt.timedelta | None = None,
        earlier: IdSet | None = None,
    ) -> None:
        """Select for ``window``; ``seen`` holds the ids earlier files of this sync emitted.

        The ids this file emits join ``seen`` as they go, so the next file leaves them out.
        ``earlier`` is a copy of ``seen`` as it was before this file, if the caller has one.
        """
        self.window = window
        self.seen = seen
        self.server_margin = server_margin
        #: The ids earlier files emitted (an id in ``seen`` and not here was emitted here).
        self.earlier = earlier if earlier is not None else seen.copy()
        self.emitted = self.outside = self.kept_outside = self.repeated = 0
        self.repeated_in_file = 0
        self.latest: str | None = None
        self.furthest_outside = dt.timedelta(0)

    def select(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Yield the records to emit (each id is known non-empty: the reader rejects others).

        The window and the ids are checked inline, with no call per record: this runs once
        per row of every file.

        Args:
            records: A file's typed records.

        Yields:
            The records inside the window (or returned by Spaaza's own window filter) whose
            ids no earlier file of this sync emitted.
        """
        start, end = self.window._bounds  # noqa: SLF001 - the window's own texts
        low, high = start or "", end or _AFTER_EVERY_DATE
        seen = self.seen
        bits = seen.bitmap()
        size = len(bits)
        emitted, latest = self.emitted, self.latest or ""
        try:
            for record in records:
                created = record[REPLICATION_KEY]
                if created and not low <= created < high and not self._keep_outside(created):
                    continue
                user_id = record[PRIMARY_KEY]
                if 0 <= user_id < BITMAP_LIMIT:
                    index = user_id >> 3
                    if index >= size:
                        size = seen.grow(index)
                    byte, mask = bits[index], 1 << (user_id & 7)
                    if not byte & mask:
                        bits[index] = byte | mask
                    elif not self._emit_repeat(user_id):
                        continue
                elif not seen.add_new(user_id) and not self._emit_repeat(user_id):
                    continue
                emitted += 1
                if created and created > latest:
                    latest = created
                yield record
        finally:
            self.emitted = emitted
            if latest:
                self.latest = min(latest, end) if end else latest

    def _emit_repeat(self, user_id: int) -> bool:
        """Count an id met before: emit it again only if this file emitted it (not earlier)."""
        if user_id in self.earlier:
            self.repeated += 1
            return False
        self.repeated_in_file += 1
        return True

    def _keep_outside(self, created: str) -> bool:
        """Whether to emit a user outside the window: Spaaza's own filter returned it.

        Counts it either way; for a kept one, remembers how far beyond the window it lies.
        """
        margin, window = self.server_margin, self.window
        distance = dt.timedelta(0)
        if margin is not None:
            moment = parse_utc(created)
            if window.start is not None and moment < window.start:
                distance = moment - window.start
            elif window.end is not None and moment >= window.end:
                distance = moment - window.end
        if margin is None or -margin <= distance <= margin:
            self.outside += 1
            return False
        self.kept_outside += 1
        if abs(distance) > abs(self.furthest_outside):
            self.furthest_outside = distance
        return True

    def suggested_offset(self) -> str:
        """The UTC offset the dates outside suggest (``UTC+02:00``: local time two hours ahead)."""
        hours = math.ceil(abs(self.furthest_outside) / dt.timedelta(hours=1))
        sign = "-" if self.furthest_outside < dt.timedelta(0) else "+"
        return f"UTC{sign}{hours:02d}:00"


#: Sorts after every ``created_date`` text (an open window's end).
_AFTER_EVERY_DATE = "\U0010ffff"


# The ids emitted in one sync, kept compactly: a bitmap for ordinary ids, a set for the rest.

#: Ids below this live in the bitmap (at most 16 MB); others, if any, in a plain set.
BITMAP_LIMIT = 1 << 27


class IdSet:
    """Which user ids a sync has emitted, at about one bit per id instead of ~60 bytes.

    Spaaza user ids are positive integers that grow with sign-ups, so a bitmap as long as
    the largest id keeps a million users in 125 kB where a set of ints would take ~60 MB.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._bits = bytearray()
        self._others: set[int] = set()

    def add_new(self, user_id: int) -> bool:
        """Add an id.

        Args:
            user_id: The user's id.

        Returns:
            True when the id was not in the set yet.
        """
        if 0 <= user_id < BITMAP_LIMIT:
            index, mask = user_id >> 3, 1 << (user_id & 7)
            bits = self._bits
            if index >= len(bits):
                bits.extend(bytes(max(index + 1, 2 * len(bits)) - len(bits)))
            if bits[index] & mask:
                return False
            bits[index] |= mask
            return True
        if user_id in self._others:
            return False
        self._others.add(user_id)
        return True

    def bitmap(self) -> bytearray:
        """The bitmap itself, for a loop that tests and sets bits inline (see ``grow``).

        Bit ``id & 7`` of byte ``id >> 3`` is set when ``id`` (below BITMAP_LIMIT) was added.
        """
        return self._bits

    def grow(self, index: int) -> int:
        """Lengthen the bitmap (in place) to hold byte ``index``; return its new length."""
        bits = self._bits
        if index >= len(bits):
            bits.extend(bytes(max(index + 1, 2 * len(bits)) - len(bits)))
        return len(bits)

    def __contains__(self, user_id: object) -> bool:
        """Whether an id was added."""
        if isinstance(user_id, int) and 0 <= user_id < BITMAP_LIMIT:
            index = user_id >> 3
            return index < len(self._bits) and bool(self._bits[index] & (1 << (user_id & 7)))
        return user_id in self._others

    def copy(self) -> IdSet:
        """A copy of the set as it is now (to go back to, see ``restore``)."""
        duplicate = IdSet()
        duplicate._bits = bytearray(self._bits)
        duplicate._others = set(self._others)
        return duplicate

    def restore(self, earlier: IdSet) -> None:
        """Go back to ``earlier``, a copy taken before (the ids added since are forgotten)."""
        self._bits = bytearray(earlier._bits)
        self._others = set(earlier._others)
