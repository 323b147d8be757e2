"""Tasks API misbehaviours: lost create answers, task lists, state-code case, durations, URLs."""

from __future__ import annotations

import csv
import io
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
import requests
from sandbox_client import ApiClient

from tap_spaaza_users.contract import parse_utc

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory


def _listed(api: ApiClient, **params: object) -> list[dict[str, Any]]:
    response = api.call("GET", "/tasks", params=params)
    assert response.status_code == 200, response.text
    return cast("list[dict[str, Any]]", response.json())


def test_answer_lost_creates_the_task_then_answers_502_for_n_creates(api: ApiClient) -> None:
    api.sb.inject("answer_lost", method="POST", path="/tasks", times=2)
    statuses = [
        api.call("POST", "/tasks", json={**api.body(), "desc": f"try {n}"}).status_code
        for n in (1, 2, 3)
    ]
    assert statuses == [502, 502, 201]
    assert [t["desc"] for t in _listed(api)] == ["try 3", "try 2", "try 1"]
    assert api.call("GET", "/tasks").status_code == 200  # other requests are not touched
    recorded = [(r.method, r.path, r.status) for r in api.sb.requests if r.path == "/tasks"]
    assert recorded[:3] == [("POST", "/tasks", 502)] * 2 + [("POST", "/tasks", 201)]


def test_answer_lost_through_the_control_api_with_another_status(api: ApiClient) -> None:
    armed = api.control("POST", "/faults", json={"kind": "answer_lost", "status": 504,
                                                 "method": "POST", "path": "/tasks"})  # fmt: skip
    assert armed.json()[0]["kind"] == "answer_lost"
    lost = api.call("POST", "/tasks", json=api.body())
    assert lost.status_code == 504
    assert lost.json()["error"]["code"] == 504
    assert len(_listed(api)) == 1


def _recorded_creates(api: ApiClient) -> list[int]:
    return [r.status for r in api.sb.requests if (r.method, r.path) == ("POST", "/tasks")]


def test_answer_lost_held_past_the_client_read_timeout(api: ApiClient) -> None:
    api.sb.inject("answer_lost", method="POST", path="/tasks", hold_seconds=2, then="answer")
    with pytest.raises(requests.ReadTimeout):
        requests.post(api.sb.url + "/tasks", json=api.body(), timeout=(5, 0.3),
                      headers={"Authorization": api.auth})  # fmt: skip
    assert _recorded_creates(api) == []  # the client gave up while the answer was still held
    assert len(_listed(api)) == 1  # created before the answer was held
    deadline = time.monotonic() + 30
    while not _recorded_creates(api) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _recorded_creates(api) == [201]  # then answered, late


def test_answer_lost_held_then_dropped_without_an_answer(api: ApiClient) -> None:
    api.sb.inject("answer_lost", method="POST", path="/tasks", hold_seconds=0.3, then="drop")
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        api.call("POST", "/tasks", json=api.body())
    assert time.monotonic() - started >= 0.3
    assert len(_listed(api)) == 1
    dropped = next(r for r in api.sb.requests if r.method == "POST")
    assert dropped.status == 0  # recorded as "no answer"


def test_list_keeps_desc_verbatim_filters_and_is_recorded(api: ApiClient) -> None:
    desc = 'tap-spaaza-users window 2026-01-01T00:00:00Z..  "quoted", ünïcode  '
    first = api.call("POST", "/tasks", json={**api.body(), "desc": desc}).json()["id"]
    second = api.create(once="2099-01-01T00:00:00Z")["id"]
    api.wait(first)
    assert [t["desc"] for t in _listed(api, action="export")][1] == desc
    assert [t["id"] for t in _listed(api, status="DONE")] == [first]
    assert [t["id"] for t in _listed(api, status="READY", limit=5, offset=0)] == [second]
    assert _listed(api, limit=1) == _listed(api)[:1]
    last = api.sb.requests[-1]
    assert (last.server, last.method, last.path) == ("api", "GET", "/tasks")
    assert api.sb.requests[-2].query == {"limit": "1"}


def test_lowercase_state_codes_everywhere_the_state_is_answered(
    sandbox_factory: SandboxFactory,
) -> None:
    api = ApiClient(sandbox_factory(users=50, state_code_case="lower", task_base_seconds=0.4))
    created = api.create()
    assert created["state"]["code"] == "ready"
    assert api.wait(created["id"], ("inprogress",))["state"]["code"] == "inprogress"
    assert api.wait(created["id"], ("done",))["state"]["code"] == "done"
    assert [t["state"]["code"] for t in _listed(api, status="done")] == ["done"]
    later = api.create(once="2099-01-01T00:00:00Z")["id"]
    assert api.call("POST", f"/tasks/{later}/execute").json()["code"] == "done"
    assert api.call("GET", f"/tasks/{later}/download_url").status_code == 200


def test_state_code_case_is_an_option_of_the_control_api(api: ApiClient) -> None:
    assert api.control("POST", "/options", json={"state_code_case": "lower"}).status_code == 200
    assert api.create()["state"]["code"] == "ready"
    assert api.control("DELETE", "/options").json()["state_code_case"] == "upper"
    assert api.create()["state"]["code"] == "READY"
    refused = api.control("POST", "/options", json={"state_code_case": "title"})
    assert refused.status_code == 400
    assert "state_code_case must be one of" in refused.json()["error"]


def test_export_duration_option_and_concurrent_tasks_progress_independently(
    sandbox_factory: SandboxFactory,
) -> None:
    api = ApiClient(sandbox_factory(users=50, task_base_seconds=1.0))
    started = time.monotonic()
    ids = [api.create()["id"] for _ in range(3)]
    finished: dict[int, float] = {}

    def wait(task_id: int) -> None:
        api.wait(task_id)
        finished[task_id] = time.monotonic() - started

    threads = [threading.Thread(target=wait, args=(task_id,)) for task_id in ids]
    for thread in threads:
        thread.start()
    assert _all_in_progress_at_once(api, ids)  # none waits for another to finish
    for thread in threads:
        thread.join()
    assert sorted(finished) == sorted(ids)
    assert all(seconds >= 1.0 for seconds in finished.values()), finished
    for task_id in ids:  # each runs its own 1 s, not queued behind the others
        task = api.sb.tasks[task_id]
        assert task.deadline is not None
        assert task.started_at is not None
        assert task.deadline - task.started_at == pytest.approx(1.0)
    assert api.control("POST", "/options", json={"task_base_seconds": 0}).status_code == 200
    assert api.control("GET", "/options").json()["task_base_seconds"] == 0
    quick = api.create()["id"]
    assert api.wait(quick)["state"]["code"] == "DONE"
    task = api.sb.tasks[quick]
    assert task.deadline is not None
    assert task.started_at is not None
    assert task.deadline - task.started_at == 0  # the option took effect: no wait at all


def _all_in_progress_at_once(api: ApiClient, ids: list[int]) -> bool:
    """Whether one task list, before any of ``ids`` is DONE, shows them all INPROGRESS."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        codes = {t["id"]: t["state"]["code"] for t in _listed(api) if t["id"] in ids}
        if set(codes.values()) == {"INPROGRESS"} and len(codes) == len(ids):
            return True
        if "DONE" in codes.values():
            return False
        time.sleep(0.02)
    return False


def test_insecure_download_url_points_at_a_plain_http_non_loopback_host(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    api.sb.inject("insecure_download_url")
    url = api.download_url(task_id)
    assert url.startswith(
        f"http://storage.example.com/spaaza-exports/1234/User_Export-{task_id}.csv?"
    )
    assert "X-Amz-Signature=" in url
    api.sb.inject("insecure_download_url", host="files.spaaza.test:8080")
    assert api.download_url(task_id).startswith("http://files.spaaza.test:8080/spaaza-exports/")
    assert api.download_url(task_id).startswith(api.sb.storage_url + "/")
    assert not [r for r in api.sb.requests if r.server == "storage"]


def test_duplicate_rows_repeat_users_later_with_newer_values(api: ApiClient) -> None:
    api.control("POST", "/faults", json={"kind": "duplicate_rows", "count": 2})
    rows = list(csv.DictReader(io.StringIO(api.export().content.decode("utf-8"))))
    assert len(rows) == 1002
    first, repeated = rows[:2], rows[-2:]
    assert [r["id"] for r in repeated] == [r["id"] for r in first]
    for old, new in zip(first, repeated, strict=True):
        assert new["loyalty_status_name"] != old["loyalty_status_name"]
        assert new["loyalty_status_loyalty_level_id"] != old["loyalty_status_loyalty_level_id"]
        newer = parse_utc(new["last_modified_date"]) - parse_utc(old["last_modified_date"])
        assert newer == timedelta(hours=1)
        assert {k: v for k, v in new.items() if k not in _CHANGED} == {
            k: v for k, v in old.items() if k not in _CHANGED
        }
    assert len({r["id"] for r in rows}) == 1000
    again = list(csv.DictReader(io.StringIO(api.export().content.decode("utf-8"))))
    assert len(again) == 1000


_CHANGED = {"loyalty_status_name", "loyalty_status_loyalty_level_id", "last_modified_date"}
