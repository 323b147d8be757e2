"""The /_sandbox control namespace over HTTP (no auth, not recorded)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from sandbox_client import ApiClient


def _control(api: ApiClient, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{api.sb.url}/_sandbox{path}", timeout=10, **kwargs)


def test_info_lists_the_connection_details(api: ApiClient) -> None:
    info = _control(api, "GET", "").json()
    assert info == api.sb.describe()
    assert info["storage_url"] == api.sb.storage_url


def test_clock_get_set_and_advance(api: ApiClient) -> None:
    assert _control(api, "GET", "/clock").json()["now"].endswith("Z")
    moved = _control(api, "POST", "/clock", json={"set": "2030-01-01T00:00:00Z"}).json()
    assert moved["now"].startswith("2030-01-01T00:00:0")
    later = _control(api, "POST", "/clock", json={"advance": 86400}).json()
    assert later["now"].startswith("2030-01-02T00:00:0")
    assert _control(api, "POST", "/clock", json={"set": "soon"}).status_code == 400


def test_users_add_count_update_delete(api: ApiClient) -> None:
    assert _control(api, "GET", "/users").json() == {"count": 1000}
    added = _control(
        api, "POST", "/users", json={"count": 2, "created_date": "2026-01-01T00:00:00Z"}
    )
    assert added.json() == {"ids": [1001, 1002]}
    lagged = _control(api, "POST", "/users", json={"count": 1, "visible_after_seconds": 600})
    assert lagged.json() == {"ids": [1003]}
    assert _control(api, "GET", "/users").json() == {"count": 1002}
    patched = _control(api, "PATCH", "/users/1001", json={"first_name": "Zoë", "overall": 5})
    assert patched.status_code == 200
    row = next(r for r in api.sb.users() if r["id"] == "1001")
    assert (row["first_name"], row["overall"], row["created_date"]) == (
        "Zoë", "5", "2026-01-01 00:00:00",
    )  # fmt: skip
    assert _control(api, "DELETE", "/users/1001").status_code == 204
    assert _control(api, "GET", "/users").json() == {"count": 1001}
    assert _control(api, "DELETE", "/users/1001").status_code == 404
    assert _control(api, "PATCH", "/users/5", json={"shoe_size": 1}).status_code == 400


def test_faults_arm_list_and_clear(api: ApiClient) -> None:
    armed = _control(api, "POST", "/faults", json={"kind": "status", "status": 503, "times": 2})
    assert armed.json() == [
        {"kind": "status", "params": {"status": 503}, "times": 2, "method": None, "path": None}
    ]
    assert api.call("GET", "/tasks").status_code == 503
    assert _control(api, "GET", "/faults").json()[0]["times"] == 1
    assert _control(api, "DELETE", "/faults").json() == []
    assert api.call("GET", "/tasks").status_code == 200
    assert _control(api, "POST", "/faults", json={"kind": "meteor"}).status_code == 400


def test_dialect_set_get_and_default(api: ApiClient) -> None:
    chosen = _control(api, "POST", "/dialect", json={"bom": True, "booleans": "yes_no"}).json()
    assert (chosen["bom"], chosen["booleans"]) == (True, "yes_no")
    assert _control(api, "GET", "/dialect").json() == chosen
    assert api.export().content.startswith(b"\xef\xbb\xbf")
    assert _control(api, "DELETE", "/dialect").json()["bom"] is False
    assert _control(api, "POST", "/dialect", json={"booleans": "Y_N"}).status_code == 400


def test_requests_are_inspectable_and_control_calls_are_not_recorded(api: ApiClient) -> None:
    before = time.time()
    api.call("GET", "/tasks", headers={"X-Trace": "abc"})
    after = time.time()
    _control(api, "GET", "/clock")
    recorded = _control(api, "GET", "/requests").json()
    assert [(r["server"], r["method"], r["path"], r["status"]) for r in recorded] == [
        ("api", "GET", "/tasks", 200)
    ]
    assert recorded[0]["headers"]["X-Trace"] == "abc"
    assert before <= recorded[0]["received_at"] <= after
    assert _control(api, "DELETE", "/requests").status_code == 204
    assert api.sb.requests == []


def test_request_json_bodies_are_recorded(api: ApiClient) -> None:
    body = api.body()
    api.call("POST", "/tasks", json=body)
    assert api.sb.requests[-1].json == body
    assert api.sb.requests[-1].status == 201


def test_segments_lists_the_saved_segments(api: ApiClient) -> None:
    segments = _control(api, "GET", "/segments").json()
    assert [(s["id"], s["name"]) for s in segments] == [
        (101, "High-value customers"), (102, "Newsletter subscribers"),
    ]  # fmt: skip
    assert segments[0]["segment"]["rules"][0]["field_name"] == "overall"


def test_reset_forgets_tasks_faults_requests_and_dialect(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    path = api.sb.tasks[task_id].file
    api.sb.inject("status", status=500)
    api.sb.set_csv_dialect(bom=True)
    assert _control(api, "POST", "/reset").status_code == 200
    assert api.sb.tasks == {}
    assert api.sb.faults.armed() == []
    assert api.sb.requests == []
    assert api.sb.engine.dialect.bom is False
    assert path is not None
    assert not path.exists()
    assert api.call("GET", f"/tasks/{task_id}").status_code == 404


def test_task_backdated_keeps_its_state_and_lists_the_older_created_date(api: ApiClient) -> None:
    task_id = api.create(once="2099-01-01T00:00:00Z")["id"]  # scheduled far ahead: READY

    aged = _control(
        api, "PATCH", f"/tasks/{task_id}", json={"created_date": "2026-01-01T08:00:00Z"}
    )

    assert aged.status_code == 200
    assert aged.json()["state"]["created_date"] == "2026-01-01T08:00:00Z"
    listed = api.call("GET", "/tasks").json()
    assert [(t["id"], t["state"]["code"], t["state"]["created_date"]) for t in listed] == [
        (task_id, "READY", "2026-01-01T08:00:00Z")
    ]
    assert (
        _control(
            api, "PATCH", "/tasks/999", json={"created_date": "2026-01-01T08:00:00Z"}
        ).status_code
        == 404
    )
    assert (
        _control(api, "PATCH", f"/tasks/{task_id}", json={"created_date": "soon"}).status_code
        == 400
    )
    assert _control(api, "PATCH", f"/tasks/{task_id}", json={}).status_code == 400


def test_unknown_control_path_is_404(api: ApiClient) -> None:
    assert _control(api, "GET", "/nope").status_code == 404


def test_reset_keeps_users_clock_and_task_ids_as_the_docs_say(api: ApiClient) -> None:
    before = api.create()["id"]
    _control(api, "POST", "/users", json={"count": 2})
    _control(api, "DELETE", "/users/5")
    _control(api, "POST", "/clock", json={"set": "2031-01-01T00:00:00Z"})
    assert _control(api, "POST", "/reset").status_code == 200
    assert _control(api, "GET", "/users").json() == {"count": 1001}
    assert _control(api, "GET", "/clock").json()["now"].startswith("2031-01-01T00:00:")
    assert api.create()["id"] == before + 1
    assert api.call("GET", f"/tasks/{before}").status_code == 404
    docs = " ".join(
        (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text("utf-8").split()
    )
    assert "It does **not** restore the users" in docs
    assert "nor the clock" in docs
    assert "nor the task ids" in docs
    assert "only for the same `--seed`, `--users` and `--now`" in docs
