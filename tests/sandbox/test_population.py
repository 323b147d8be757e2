"""The users: deterministic, realistic, every column; added/updated/deleted; index lag; clock."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from sandbox_client import ApiClient, segment_of

from tap_spaaza_users.contract import USER_COLUMNS, parse_utc

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory

    from tap_spaaza_users.sandbox import Sandbox

START = datetime(2026, 5, 26, 12, tzinfo=timezone.utc)


def _export_rows(api: ApiClient) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(api.export().content.decode("utf-8"))))


def test_users_are_deterministic_for_a_seed_and_start(sandbox_factory: SandboxFactory) -> None:
    first = sandbox_factory(users=50, seed=3, now=START).users()
    again = sandbox_factory(users=50, seed=3, now=START).users()
    other = sandbox_factory(users=50, seed=4, now=START).users()
    assert first == again
    assert first != other


def test_every_column_in_order_with_ids_one_to_n(small_api: ApiClient) -> None:
    response = small_api.export()
    header = response.content.decode("utf-8").split("\n", 1)[0]
    assert header.split(",") == list(USER_COLUMNS)
    assert [int(r["id"]) for r in _export_rows(small_api)] == list(range(1, 201))


def test_created_dates_span_three_years_increase_and_sometimes_share_a_second(
    small_sandbox: Sandbox,
) -> None:
    created = [parse_utc(r["created_date"]) for r in small_sandbox.users()]
    assert created == sorted(created)
    assert len(set(created)) < len(created)
    assert created[0] < START - timedelta(days=3 * 365 - 30)
    assert START - timedelta(days=30) < created[-1] < START


def test_values_are_realistic_and_awkward(sandbox_factory: SandboxFactory) -> None:
    rows = sandbox_factory(users=1000, seed=1, now=START).users()
    assert {r["overall"] for r in rows} == {"1", "2", "3", "4", "5"}
    tiers = {(r["loyalty_status_name"], r["loyalty_status_loyalty_level_id"]) for r in rows}
    assert tiers == {("Bronze", "1"), ("Silver", "2"), ("Gold", "3"), ("Platinum", "4")}
    assert {r["mailing_list_subscribed"] for r in rows} == {"true", "false"}
    names = {r["first_name"] for r in rows} | {r["last_name"] for r in rows}
    assert {"Zoë", "Łukasz", "François"} <= names
    cells = [v for r in rows for v in r.values()]
    assert any("," in v for v in cells)
    assert any('"' in v for v in cells)
    assert any("\n" in v for v in cells)
    assert any(v != v.strip() for v in cells)
    assert "" in cells


def test_the_file_round_trips_quotes_commas_and_newlines(small_api: ApiClient) -> None:
    assert _export_rows(small_api) == small_api.sb.users()


def test_added_users_get_new_ids_and_are_exported(small_api: ApiClient) -> None:
    ids = small_api.sb.add_users(3)
    assert ids == [201, 202, 203]
    assert small_api.sb.user_count() == 203
    rows = _export_rows(small_api)
    assert [int(r["id"]) for r in rows][-3:] == ids
    assert rows[-1]["created_date"] == rows[-1]["last_modified_date"]


def test_added_users_take_the_given_created_date(small_sandbox: Sandbox) -> None:
    when = START - timedelta(days=1)
    (user_id,) = small_sandbox.add_users(1, created_date=when)
    row = small_sandbox.users(created_after=when - timedelta(seconds=1))[-1]
    assert row["id"] == str(user_id)
    assert row["created_date"] == "2026-05-25 12:00:00"


def test_users_filters_strictly_like_the_server(small_sandbox: Sandbox) -> None:
    edge = small_sandbox.users()[99]["created_date"]
    after = small_sandbox.users(created_after=edge.replace(" ", "T") + "Z")
    before = small_sandbox.users(created_before=parse_utc(edge))
    assert all(r["created_date"] > edge for r in after)
    assert all(r["created_date"] < edge for r in before)
    assert (
        len(after) + len(before) + sum(r["created_date"] == edge for r in small_sandbox.users())
        == 200
    )


def test_updated_users_are_exported_with_their_changes(small_api: ApiClient) -> None:
    small_api.sb.update_user(5, first_name="Zoë", overall=5, is_employee=True,
                             last_modified_date=START, birthday=None)  # fmt: skip
    row = next(r for r in _export_rows(small_api) if r["id"] == "5")
    assert (row["first_name"], row["overall"], row["is_employee"]) == ("Zoë", "5", "true")
    assert row["last_modified_date"] == "2026-05-26 12:00:00"
    assert row["birthday"] == ""


def test_update_rejects_unknown_users_and_columns(small_sandbox: Sandbox) -> None:
    with pytest.raises(KeyError, match="no user"):
        small_sandbox.update_user(9999, overall=1)
    with pytest.raises(KeyError, match="shoe_size"):
        small_sandbox.update_user(1, shoe_size=44)
    with pytest.raises(KeyError, match="id"):
        small_sandbox.update_user(1, id=2)


def test_deleted_users_are_not_exported(small_api: ApiClient) -> None:
    small_api.sb.delete_user(10)
    (added,) = small_api.sb.add_users(1)
    small_api.sb.delete_user(added)
    ids = {int(r["id"]) for r in _export_rows(small_api)}
    assert not {10, added} & ids
    assert small_api.sb.user_count() == 199
    with pytest.raises(KeyError):
        small_api.sb.delete_user(10)


def test_index_lag_hides_new_users_until_it_has_passed(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=20, index_lag_seconds=120)
    api = ApiClient(sb)
    (user_id,) = sb.add_users(1)
    assert user_id not in api.export_ids()
    assert sb.user_count() == 20
    sb.clock.advance(121)
    assert user_id in api.export_ids()
    assert sb.user_count() == 21


def test_visible_after_seconds_overrides_the_lag(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=20, index_lag_seconds=0)
    api = ApiClient(sb)
    late, now = sb.add_users(1, visible_after_seconds=60), sb.add_users(1)
    ids = api.export_ids()
    assert now[0] in ids
    assert late[0] not in ids
    sb.clock.advance(60)
    assert late[0] in api.export_ids()


def test_an_export_is_a_snapshot_at_task_start(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=3000, task_base_seconds=0.3)
    api = ApiClient(sb)
    task_id = api.create()["id"]
    api.wait(task_id, ("INPROGRESS",))
    sb.add_users(2)
    sb.delete_user(1)
    api.wait(task_id)
    import requests  # noqa: PLC0415

    text = requests.get(api.download_url(task_id), timeout=10).text
    ids = {int(r["id"]) for r in csv.DictReader(io.StringIO(text))}
    assert ids == set(range(1, 3001))


def test_clock_starts_at_now_and_can_be_set_and_advanced(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=1)
    assert abs(sb.clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
    sb.clock.set(START)
    assert START <= sb.clock.now() < START + timedelta(seconds=5)
    sb.clock.advance(3600)
    assert START + timedelta(hours=1) <= sb.clock.now() < START + timedelta(hours=1, seconds=5)
    assert sb.clock.now().tzinfo is not None


def test_incremental_window_with_a_moving_clock(small_api: ApiClient) -> None:
    sb = small_api.sb
    bookmark = sb.clock.now()
    sb.clock.advance(10)
    new_ids = sb.add_users(2)
    rule = {"field_name": "created_date", "field_type": "date", "operator": "is_after_date",
            "start_date": bookmark.isoformat()}  # fmt: skip
    assert small_api.export_ids(segment_of(rule)) == set(new_ids)


def test_deleting_a_user_not_yet_visible_leaves_the_count_of_visible_users(api: ApiClient) -> None:
    lagged = api.control("POST", "/users", json={"count": 2, "visible_after_seconds": 600})
    first, second = lagged.json()["ids"]
    assert api.control("DELETE", f"/users/{first}").status_code == 204
    assert api.control("GET", "/users").json() == {"count": 1000}
    api.control("POST", "/clock", json={"advance": 601})
    assert api.control("GET", "/users").json() == {"count": 1001}
    assert api.control("DELETE", f"/users/{second}").status_code == 204
    assert api.control("GET", "/users").json() == {"count": 1000}
    assert len(api.sb.users()) == 1000
