"""Invalid bodies get the contract's 400 naming what is wrong, never a 500 with a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
from sandbox_client import segment_of

if TYPE_CHECKING:
    import requests
    from sandbox_client import ApiClient


def _rule(**fields: Any) -> dict[str, Any]:
    return {"field_name": "created_date", "field_type": "date", "operator": "is_after_date",
            "start_date": "2025-01-01T00:00:00Z"} | fields  # fmt: skip


def _error(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = cast("dict[str, Any]", response.json()["error"])
    assert error["code"] == 400
    assert error["description"]
    return error


OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_once_out_of_range_is_invalid_date(api: ApiClient, moment: str) -> None:
    error = _error(api.call("POST", "/tasks", json=api.body(once=moment)))
    assert error["name"] == "invalid_date"
    assert moment in error["description"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_rule_date_out_of_range_is_invalid_date(api: ApiClient, moment: str) -> None:
    body = api.body(segment_of(_rule(start_date=moment)))
    assert _error(api.call("POST", "/tasks", json=body))["name"] == "invalid_date"


UNHASHABLE_CASES = [
    ({"join": ["all"]}, {}, "unknown_join"),
    ({}, {"field_type": ["number"]}, "unknown_field_type"),
    ({}, {"operator": {"is": 1}}, "unknown_operator"),
    ({}, {"operator": "relative_less_than", "time_factor": {"day": 1}, "time_amount": 1},
     "unknown_time_factor"),
]  # fmt: skip


@pytest.mark.parametrize(("envelope", "rule", "name"), UNHASHABLE_CASES)
def test_list_or_object_where_a_name_belongs_is_named(
    api: ApiClient, envelope: dict[str, Any], rule: dict[str, Any], name: str
) -> None:
    body = api.body(segment_of(_rule(**rule)) | envelope)
    assert _error(api.call("POST", "/tasks", json=body))["name"] == name


@pytest.mark.parametrize(("factor", "amount"), [("year", 10**6), ("day", "1e30")])
def test_relative_rule_reaching_past_year_one_is_refused(
    api: ApiClient, factor: str, amount: object
) -> None:
    rule = _rule(operator="relative_less_than", time_factor=factor, time_amount=amount)
    del rule["start_date"]
    body = api.body(segment_of(rule))
    assert _error(api.call("POST", "/tasks", json=body))["name"] == "invalid_time_amount"


def test_deeply_nested_body_is_invalid_json_and_recorded(api: ApiClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = api.call("POST", "/tasks", data=deep, headers={"Content-Type": "application/json"})
    assert _error(response)["name"] == "invalid_json"
    recorded = api.control("GET", "/requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [("POST", "/tasks", 400)]


def test_a_request_the_sandbox_fails_on_is_answered_500_and_recorded(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object) -> None:
        raise RuntimeError

    monkeypatch.setattr(api.sb._api, "_list", crash)
    response = api.call("GET", "/tasks")
    assert response.status_code == 500
    assert response.json()["error"]["name"] == "internal_error"
    assert "Traceback" not in response.text
    recorded = api.control("GET", "/requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [("GET", "/tasks", 500)]


CONTROL_CASES = [
    ("/users", [1]),
    ("/users", {"created_date": 5}),
    ("/clock", {"advance": 1e300}),
    ("/clock", [1]),
    ("/faults", ["status"]),
    ("/tasks/1", {"created_date": 5}),
]


@pytest.mark.parametrize(("path", "body"), CONTROL_CASES)
def test_control_bad_body_is_400(api: ApiClient, path: str, body: object) -> None:
    method = "PATCH" if path.startswith("/tasks/") else "POST"
    if method == "PATCH":
        api.create()
    response = api.control(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def test_export_with_dates_at_the_ends_of_the_calendar_is_done_not_error(api: ApiClient) -> None:
    early = {"created_date": "0001-01-01T00:00:00+01:00"}  # out of range once in UTC
    assert api.control("PATCH", "/users/3", json=early).status_code == 200
    last_day = _rule(operator="is_date", value="9999-12-31T00:00:00Z")
    del last_day["start_date"]
    task = api.create(segment_of(last_day))
    assert api.wait(task["id"])["state"]["code"] == "DONE"
    after = api.create(segment_of(_rule()))
    assert api.wait(after["id"])["state"]["code"] == "DONE"
