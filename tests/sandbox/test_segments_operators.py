"""Every other operator, field type, time factor and join, and the saved segments."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sandbox_client import ApiClient, segment_of

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from collections.abc import Callable


def _expect(api: ApiClient, predicate: Callable[[dict[str, str]], bool]) -> set[int]:
    expected = {int(r["id"]) for r in api.sb.users() if predicate(r)}
    assert expected, "the case must select someone"
    assert len(expected) < api.sb.user_count(), "the case must leave someone out"
    return expected


def _rule(field: str, field_type: str, operator: str, **operands: Any) -> dict[str, Any]:
    return {"field_name": field, "field_type": field_type, "operator": operator, **operands}


CASES = [
    (_rule("loyalty_status_name", "keyword", "is", value="Gold"),
     lambda r: r["loyalty_status_name"] == "Gold"),
    (_rule("loyalty_status_name", "keyword", "is", value="gold"), None),
    (_rule("loyalty_status_name", "text", "is", value="gold"),
     lambda r: r["loyalty_status_name"] == "Gold"),
    (_rule("loyalty_status_name", "keyword", "is_not", value="Gold"),
     lambda r: r["loyalty_status_name"] != "Gold"),
    (_rule("first_name", "text", "contains", value="ZO"),
     lambda r: "zo" in r["first_name"].lower()),
    (_rule("last_name", "keyword", "contains", value=","), lambda r: "," in r["last_name"]),
    (_rule("first_name", "keyword", "does_not_contain", value="a"),
     lambda r: "a" not in r["first_name"].lower()),
    (_rule("overall", "number", "is", value=4), lambda r: r["overall"] == "4"),
    (_rule("overall", "number", "is_not", value="4"), lambda r: r["overall"] != "4"),
    (_rule("overall", "number", "is_between_number", min=2, max=3),
     lambda r: r["overall"] in {"2", "3"}),
    (_rule("average_basket_value", "number", "is_between_number", min="10.5", max=100),
     lambda r: 10.5 <= float(r["average_basket_value"]) <= 100),
    (_rule("mailing_list_subscribed", "boolean", "is", value=True),
     lambda r: r["mailing_list_subscribed"] == "true"),
    (_rule("is_employee", "boolean", "is_not", value="true"), lambda r: r["is_employee"] != "true"),
    (_rule("opt_in_programme_join_date", "date", "is_after_date", start_date="2025-01-01"),
     lambda r: r["opt_in_programme_join_date"] > "2025-01-01 00:00:00"),
    (_rule("birthday", "date", "is_before_date", end_date="1970-01-01T00:00:00Z"),
     lambda r: r["birthday"] < "1970-01-01"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "predicate"), CASES)
def test_operator_selects_exactly_the_matching_users(
    small_api: ApiClient, rule: dict[str, Any], predicate: Any
) -> None:
    ids = small_api.export_ids(segment_of(rule))
    if predicate is None:
        assert ids == set()
    else:
        assert ids == _expect(small_api, predicate)


def test_is_between_number_is_inclusive(small_api: ApiClient) -> None:
    ids = small_api.export_ids(
        segment_of(_rule("overall", "number", "is_between_number", min=4, max=4))
    )
    assert ids == _expect(small_api, lambda r: r["overall"] == "4")


def test_empty_values_match_is_not_and_never_a_comparison(small_api: ApiClient) -> None:
    rule = _rule("referral_code", "keyword", "is_not", value="REF-1")
    assert small_api.export_ids(segment_of(rule)) == {int(r["id"]) for r in small_api.sb.users()}
    after = _rule("opt_in_programme_join_date", "date", "is_after_date", start_date="2000-01-01")
    assert small_api.export_ids(segment_of(after)) == _expect(
        small_api, lambda r: r["opt_in_programme_join_date"] != ""
    )


@pytest.mark.parametrize(
    ("factor", "amount", "delta"),
    [("minute", 90 * 24 * 60, timedelta(days=90)), ("hour", 24 * 90, timedelta(days=90)),
     ("day", 90, timedelta(days=90)), ("week", 13, timedelta(weeks=13)),
     ("month", 3, None), ("year", 1, None)],
)  # fmt: skip
def test_relative_operators_split_at_now_minus_the_amount(
    small_api: ApiClient, factor: str, amount: int, delta: timedelta | None
) -> None:
    now = small_api.sb.clock.now()
    cutoff = (
        now - delta
        if delta
        else {"month": now.replace(month=2), "year": now.replace(year=2025)}[factor]
    )
    less = _rule(
        "created_date", "date", "relative_less_than", time_factor=factor, time_amount=amount
    )
    more = _rule(
        "created_date", "date", "relative_more_than", time_factor=factor, time_amount=amount
    )
    recent = small_api.export_ids(segment_of(less))
    older = small_api.export_ids(segment_of(more))
    assert recent == _expect(small_api, lambda r: parse_utc(r["created_date"]) >= cutoff)
    assert older == _expect(small_api, lambda r: parse_utc(r["created_date"]) < cutoff)


def test_relative_operators_follow_the_sandbox_clock(small_api: ApiClient) -> None:
    rule = _rule("created_date", "date", "relative_less_than", time_factor="day", time_amount=30)
    before = small_api.export_ids(segment_of(rule))
    small_api.sb.clock.advance(365 * 86400)
    assert before
    assert small_api.export_ids(segment_of(rule)) == set()


def test_join_all_and_any(small_api: ApiClient) -> None:
    gold = _rule("loyalty_status_name", "keyword", "is", value="Gold")
    subscribed = _rule("mailing_list_subscribed", "boolean", "is", value=True)
    both = small_api.export_ids(segment_of(gold, subscribed, join="all"))
    either = small_api.export_ids(segment_of(gold, subscribed, join="any"))

    def is_gold(row: dict[str, str]) -> bool:
        return row["loyalty_status_name"] == "Gold"

    def is_sub(row: dict[str, str]) -> bool:
        return row["mailing_list_subscribed"] == "true"

    assert both == _expect(small_api, lambda r: is_gold(r) and is_sub(r))
    assert either == _expect(small_api, lambda r: is_gold(r) or is_sub(r))


def test_nested_field_names_are_flattened(small_api: ApiClient) -> None:
    rule = _rule("loyalty_status.name", "keyword", "is", value="Gold", nested=True,
                 nesting_path="loyalty_status")  # fmt: skip
    assert small_api.export_ids(segment_of(rule)) == _expect(
        small_api, lambda r: r["loyalty_status_name"] == "Gold"
    )


def test_saved_segments_are_listed(small_api: ApiClient) -> None:
    saved = small_api.sb.saved_segments
    assert saved[101].name == "High-value customers"
    assert saved[102].name == "Newsletter subscribers"


@pytest.mark.parametrize(
    ("segment_id", "predicate"),
    [
        (101, lambda r: int(r["overall"]) >= 4),
        (102, lambda r: r["mailing_list_subscribed"] == "true"),
    ],
)
def test_segment_id_exports_the_saved_segment(
    small_api: ApiClient, segment_id: int, predicate: Any
) -> None:
    task = small_api.create(segment_id=segment_id)
    small_api.wait(task["id"])
    assert small_api.sb.tasks[task["id"]].trigger["segment_id"] == segment_id
    import csv  # noqa: PLC0415
    import io  # noqa: PLC0415

    import requests  # noqa: PLC0415

    text = requests.get(small_api.download_url(task["id"]), timeout=10).text
    ids = {int(r["id"]) for r in csv.DictReader(io.StringIO(text))}
    assert ids == _expect(small_api, predicate)


def test_the_task_keeps_the_segment_the_client_sent(small_api: ApiClient) -> None:
    segment = segment_of(_rule("overall", "number", "is", value=5))
    task = small_api.create(segment)
    assert small_api.sb.tasks[task["id"]].trigger["segment"] == segment
