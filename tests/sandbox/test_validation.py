"""400s that name what is wrong in a POST /tasks body."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sandbox_client import EXPORT_TARGET, ApiClient, segment_of


def _rule(**fields: Any) -> dict[str, Any]:
    return {"field_name": "created_date", "field_type": "date", "operator": "is_after_date",
            "start_date": "2025-01-01T00:00:00Z"} | fields  # fmt: skip


def _error(api: ApiClient, body: Any) -> dict[str, Any]:
    response = api.call("POST", "/tasks", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["description"]
    return cast("dict[str, Any]", error)


SEGMENT_CASES = [
    ({"index": "orders"}, "unknown_index"),
    ({"entity": "things"}, "unknown_entity"),
    ({"join": "some"}, "unknown_join"),
    ({"rules": "not-a-list"}, "invalid_rules"),
]


@pytest.mark.parametrize(("change", "name"), SEGMENT_CASES)
def test_bad_segment_envelope_is_named(api: ApiClient, change: dict[str, Any], name: str) -> None:
    assert _error(api, api.body(segment_of(_rule()) | change))["name"] == name


RULE_CASES = [
    ({"operator": "is_roughly"}, "unknown_operator"),
    ({"field_type": "geo"}, "unknown_field_type"),
    ({"field_name": "shoe_size"}, "unknown_field"),
    ({"field_type": "keyword"}, "operator_field_type_mismatch"),
    ({"operator": "contains", "value": "x"}, "operator_field_type_mismatch"),
    ({"start_date": None}, "missing_rule_field"),
    ({"start_date": "yesterday"}, "invalid_date"),
    ({"operator": "is_between_date", "end_date": None}, "missing_rule_field"),
    ({"operator": "relative_less_than", "time_factor": "fortnight", "time_amount": 1},
     "unknown_time_factor"),
    ({"operator": "relative_less_than", "time_factor": "day", "time_amount": -1},
     "invalid_time_amount"),
    ({"field_name": "overall", "field_type": "number", "operator": "is_between_number",
      "min": "low", "max": 5}, "invalid_number"),
    ({"field_name": "is_employee", "field_type": "boolean", "operator": "is", "value": "perhaps"},
     "invalid_boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "name"), RULE_CASES)
def test_bad_rule_is_named(api: ApiClient, change: dict[str, Any], name: str) -> None:
    rule = {k: v for k, v in (_rule() | change).items() if v is not None}
    error = _error(api, api.body(segment_of(rule)))
    assert error["name"] == name
    assert "rules[0]" in error["description"]


def test_rule_without_field_type_is_missing_a_field(api: ApiClient) -> None:
    rule = _rule()
    del rule["field_type"]
    assert _error(api, api.body(segment_of(rule)))["name"] == "missing_rule_field"


BODY_CASES = [
    (lambda b: b | {"target": EXPORT_TARGET | {"export_index": "orders"}}, "unknown_index"),
    (lambda b: b | {"target": EXPORT_TARGET | {"action": "import"}}, "unknown_action"),
    (lambda b: b | {"target": EXPORT_TARGET | {"export_format": "xlsx"}}, "unknown_export_format"),
    (lambda b: {k: v for k, v in b.items() if k != "target"}, "missing_target"),
    (lambda b: {k: v for k, v in b.items() if k != "chain"}, "missing_chain"),
    (lambda b: b | {"chain": "1234"}, "invalid_chain"),
    (lambda b: {k: v for k, v in b.items() if k != "trigger"}, "missing_trigger"),
    (lambda b: b | {"trigger": {}}, "missing_trigger_once"),
    (lambda b: b | {"trigger": {"once": "next tuesday"}}, "invalid_date"),
    (lambda b: b | {"trigger": b["trigger"] | {"segment_id": 999}}, "unknown_segment"),
    (lambda b: b | {"trigger": b["trigger"] | {"segment_id": "abc"}}, "invalid_segment_id"),
    (lambda b: b | {"trigger": b["trigger"] | {"segment_id": 101, "segment": segment_of()}},
     "segment_conflict"),
    (lambda _b: [1, 2], "invalid_json"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "name"), BODY_CASES)
def test_bad_body_is_named(api: ApiClient, mutate: Any, name: str) -> None:
    assert _error(api, mutate(api.body()))["name"] == name


def test_body_that_is_not_json_is_named(api: ApiClient) -> None:
    response = api.call(
        "POST", "/tasks", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["name"] == "invalid_json"


def test_rejected_bodies_create_no_task(api: ApiClient) -> None:
    _error(api, api.body(segment_of(_rule(operator="nope"))))
    assert api.sb.tasks == {}


def test_unknown_route_and_method_answer_json_errors(api: ApiClient) -> None:
    missing = api.call("GET", "/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["name"] == "not_found"
    wrong = api.call("PUT", "/tasks")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == 405
