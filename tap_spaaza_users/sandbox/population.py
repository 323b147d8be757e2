"""The sandbox's users: the generated base plus added/updated/deleted overlays and index lag."""

from __future__ import annotations

import bisect
import calendar
import copy
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import USER_COLUMNS
from tap_spaaza_users.sandbox.clock import format_datetime
from tap_spaaza_users.sandbox.generator import COLUMNS, UserGenerator
from tap_spaaza_users.sandbox.lines import LineBlock, RenderedLines

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_spaaza_users.sandbox.lines import ExportRow


@dataclass
class AddedUser:
    """A user added while the sandbox runs."""

    created: int  # Unix seconds
    visible_at: float  # Unix seconds on the sandbox clock


@dataclass
class Overlay:
    """Changes on top of the generated base; copied whole to snapshot an export."""

    added: dict[int, AddedUser] = field(default_factory=dict)
    updated: dict[int, dict[str, str]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)


def to_csv_value(value: object) -> str:
    """Turn a Python value into the CSV's canonical text (``""`` for ``None``).

    Raises:
        TypeError: the value has no CSV form.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, str, Decimal, float)):
        return str(value)
    msg = f"cannot store a {type(value).__name__} in the users CSV"
    raise TypeError(msg)


class Population:
    """Every user the sandbox knows, current state, thread-safe."""

    def __init__(
        self, *, seed: int, count: int, epoch: float, index_lag_seconds: float = 0.0
    ) -> None:
        """Generate ``count`` base users (lazily) created in the ~3 years before ``epoch``."""
        self.generator = UserGenerator(seed, count, epoch)
        self.rendered = RenderedLines(self.generator)
        self.index_lag_seconds = index_lag_seconds
        self._overlay = Overlay()
        self._lock = threading.Lock()

    @property
    def base_count(self) -> int:
        """Return how many generated base users there are (ids 1..base_count)."""
        return self.generator.count

    def add(
        self, n: int, created: datetime, now: datetime, visible_after: float | None
    ) -> list[int]:
        """Add ``n`` users created at ``created``; visible after the lag from ``now``."""
        lag = self.index_lag_seconds if visible_after is None else visible_after
        created_s = calendar.timegm(created.utctimetuple())
        visible_at = now.timestamp() + lag
        with self._lock:
            start = max([self.base_count, *self._overlay.added]) + 1
            ids = list(range(start, start + n))
            for user_id in ids:
                self._overlay.added[user_id] = AddedUser(created_s, visible_at)
        return ids

    def update(self, user_id: int, fields: dict[str, object]) -> None:
        """Change columns of a user (values in Python or CSV form).

        Raises:
            KeyError: unknown user id or column.
        """
        unknown = sorted(set(fields) - set(USER_COLUMNS) | ({"id"} & set(fields)))
        if unknown:
            msg = f"cannot update column(s) {', '.join(unknown)}"
            raise KeyError(msg)
        with self._lock:
            self._require(user_id)
            changes = self._overlay.updated.setdefault(user_id, {})
            changes.update({name: to_csv_value(value) for name, value in fields.items()})

    def delete(self, user_id: int) -> None:
        """Delete a user so that no later export contains it.

        Raises:
            KeyError: unknown user id.
        """
        with self._lock:
            self._require(user_id)
            self._overlay.deleted.add(user_id)

    def _require(self, user_id: int) -> None:
        """Raise KeyError unless ``user_id`` exists and is not deleted (lock held)."""
        exists = 1 <= user_id <= self.base_count or user_id in self._overlay.added
        if not exists or user_id in self._overlay.deleted:
            msg = f"no user {user_id}"
            raise KeyError(msg)

    def snapshot(self) -> Overlay:
        """Return a frozen copy of the overlays, for an export that must not see later changes."""
        with self._lock:
            return copy.deepcopy(self._overlay)

    def count(self, now: datetime) -> int:
        """Return how many non-deleted users are visible at ``now``."""
        overlay = self.snapshot()
        visible = {i for i, u in overlay.added.items() if u.visible_at <= now.timestamp()}
        # a deleted added user was only counted if it was visible
        deleted = sum(1 for i in overlay.deleted if i <= self.base_count or i in visible)
        return self.base_count + len(visible) - deleted

    def rows(
        self,
        overlay: Overlay,
        now: datetime,
        created_between: tuple[datetime | None, datetime | None] = (None, None),
    ) -> Iterator[ExportRow]:
        """Yield every current user visible at ``now``, in the export's order.

        A base user without changes comes as its rendered line, in UTF-8 (``lines.as_values``
        reads it back), any other user as its values.

        Args:
            overlay: The (snapshot of the) added/updated/deleted users.
            now: The sandbox time that decides index-lag visibility.
            created_between: A hint: base users created outside these bounds may be skipped
                (updated users are always yielded; callers still filter every row).
        """
        for item in self.blocks(overlay, now, created_between):
            if isinstance(item, LineBlock):
                for _, line in item.lines():
                    yield line
            else:
                yield item

    def blocks(
        self,
        overlay: Overlay,
        now: datetime,
        created_between: tuple[datetime | None, datetime | None] = (None, None),
    ) -> Iterator[LineBlock | ExportRow]:
        """Yield what ``rows`` yields, consecutive base users without changes as one block."""
        stamp = now.timestamp()
        first, last = self._base_ids(*created_between)
        deleted, updated = overlay.deleted, overlay.updated
        changed = sorted(deleted | updated.keys())
        for block in self.rendered.blocks(first, last):
            after = bisect.bisect_left(changed, block.first)
            if after == len(changed) or changed[after] > block.last:
                yield block
                continue
            for user_id, line in block.lines():
                if user_id not in deleted:
                    yield self._row(user_id, overlay, None) if user_id in updated else line
        for user_id in sorted(overlay.updated):
            outside = not first <= user_id <= last and user_id <= self.base_count
            if outside and user_id not in overlay.deleted:
                yield self._row(user_id, overlay, None)
        for user_id, added in sorted(overlay.added.items()):
            if user_id not in overlay.deleted and added.visible_at <= stamp:
                yield self._row(user_id, overlay, added.created)

    def _base_ids(self, low: datetime | None, high: datetime | None) -> tuple[int, int]:
        """Return the base ids whose generated created time may lie within [low, high]."""
        ids = range(1, self.base_count + 1)
        created = self.generator.created_seconds
        first = 1 if low is None else bisect.bisect_left(ids, low.timestamp() - 1, key=created) + 1
        last = (
            len(ids)
            if high is None
            else bisect.bisect_right(ids, high.timestamp() + 1, key=created)
        )
        return first, last

    def _row(self, user_id: int, overlay: Overlay, created: int | None) -> dict[str, str]:
        """Build one user's row: generated values, then its updates."""
        row = dict(zip(COLUMNS, self.generator.row(user_id, created), strict=True))
        if created is not None:
            row["last_modified_date"] = row["created_date"]
        changes = overlay.updated.get(user_id)
        if changes:
            row.update(changes)
        return row
