"""Date operators on created_date: strict after/before, inclusive between, same-day is_date."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sandbox_client import ApiClient, segment_of

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sandbox_client import SandboxFactory


def _created(api: ApiClient, user_id: int) -> str:
    row = next(r for r in api.sb.users() if r["id"] == str(user_id))
    return cast("str", row["created_date"].replace(" ", "T") + "Z")


def _rule(operator: str, **operands: str | int) -> dict[str, Any]:
    return {"field_name": "created_date", "field_type": "date", "operator": operator, **operands}


def _ids_where(api: ApiClient, predicate: Callable[[datetime], bool]) -> set[int]:
    return {int(r["id"]) for r in api.sb.users() if predicate(parse_utc(r["created_date"]))}


def test_is_after_date_is_strictly_after(small_api: ApiClient) -> None:
    edge = _created(small_api, 100)
    ids = small_api.export_ids(segment_of(_rule("is_after_date", start_date=edge)))
    assert 100 not in ids
    assert 101 in ids
    assert ids == _ids_where(small_api, lambda c: c > parse_utc(edge))


def test_users_sharing_a_second_are_both_excluded_by_strict_after(small_api: ApiClient) -> None:
    assert _created(small_api, 6) == _created(small_api, 7)
    ids = small_api.export_ids(
        segment_of(_rule("is_after_date", start_date=_created(small_api, 7)))
    )
    assert not {6, 7} & ids
    assert 8 in ids


def test_is_before_date_is_strictly_before(small_api: ApiClient) -> None:
    edge = _created(small_api, 50)
    ids = small_api.export_ids(segment_of(_rule("is_before_date", end_date=edge)))
    assert ids == set(range(1, 50))


def test_is_between_date_is_inclusive_at_both_ends(small_api: ApiClient) -> None:
    start, end = _created(small_api, 20), _created(small_api, 30)
    ids = small_api.export_ids(segment_of(_rule("is_between_date", start_date=start, end_date=end)))
    assert ids == set(range(20, 31))


def test_is_date_matches_the_same_utc_day(small_api: ApiClient) -> None:
    day = _created(small_api, 120)[:10]
    ids = small_api.export_ids(segment_of(_rule("is_date", value=day)))
    assert 120 in ids
    assert ids == {int(r["id"]) for r in small_api.sb.users() if r["created_date"][:10] == day}


def test_dates_accept_offsets_and_the_csv_format(small_api: ApiClient) -> None:
    edge = parse_utc(_created(small_api, 100))
    offset = edge.astimezone(parse_utc("2026-01-01T00:00:00+02:00").tzinfo).isoformat()
    spaced = edge.strftime("%Y-%m-%d %H:%M:%S")
    by_offset = small_api.export_ids(segment_of(_rule("is_after_date", start_date=offset)))
    by_space = small_api.export_ids(segment_of(_rule("is_after_date", start_date=spaced)))
    assert by_offset == by_space == set(range(101, 201))


def test_a_user_whose_created_date_was_updated_moves_into_the_window(small_api: ApiClient) -> None:
    edge = _created(small_api, 190)
    small_api.sb.update_user(3, created_date=parse_utc(edge) + timedelta(seconds=5))
    small_api.sb.update_user(195, created_date="2001-01-01 00:00:00")
    ids = small_api.export_ids(segment_of(_rule("is_after_date", start_date=edge)))
    assert 3 in ids
    assert 195 not in ids
    assert ids == _ids_where(small_api, lambda c: c > parse_utc(edge))


def test_date_windows_on_a_large_population_match_the_reference(
    sandbox_factory: SandboxFactory,
) -> None:
    api = ApiClient(sandbox_factory(users=50_000, seed=2))
    rows = api.sb.users()
    start, end = rows[20_000]["created_date"], rows[20_050]["created_date"]
    between = _rule("is_between_date", start_date=start, end_date=end)
    ids = api.export_ids(segment_of(between, _rule("relative_more_than", time_factor="day",
                                                   time_amount=1)))  # fmt: skip
    expected = {int(r["id"]) for r in rows if start <= r["created_date"] <= end}
    assert ids == expected
    assert len(ids) >= 51
    assert api.sb.tasks[max(api.sb.tasks)].rows == len(expected)
