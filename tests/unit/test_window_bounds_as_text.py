"""Window tests on text: record date-times and window bounds compare like the moments."""

from __future__ import annotations

import datetime as dt
import itertools

from tap_spaaza_users.contract import utc_text
from tap_spaaza_users.records.reader import to_date_time

UTC = dt.timezone.utc
CELLS = [
    "2026-03-01 10:00:00",
    "2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00.000001Z",
    "2026-03-01T10:00:00.5Z",
    "2026-03-01T10:59:59.999999+00:00",
    "2026-03-01T12:00:00+02:00",
    "2026-03-01t09:59:59z",
    "2026-02-28 23:59:59",
]


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_record_date_times_compare_as_text_like_moments() -> None:
    texts = [to_date_time(cell) for cell in CELLS]
    bounds = [
        utc_text(dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        utc_text(dt.datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        utc_text(dt.datetime(2026, 3, 1, 11, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ]
    for left, right in itertools.product(texts + bounds, repeat=2):
        assert left is not None
        assert right is not None
        assert (left < right) == (moment(left) < moment(right)), (left, right)
        assert (left == right) == (moment(left) == moment(right)), (left, right)


def test_missing_bound_stays_missing() -> None:
    assert utc_text(None) is None
