"""The Tasks API endpoints: bodies, states, listing, deleting, executing, download URLs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory
from sandbox_client import EXPORT_TARGET, ApiClient, now_iso

TASK_KEYS = {"id", "chain", "desc", "state", "trigger", "target", "logs", "debug", "version"}


def test_post_tasks_answers_201_with_the_task_in_ready(api: ApiClient) -> None:
    response = api.call("POST", "/tasks", json=api.body(once="2099-01-01T00:00:00Z"))
    assert response.status_code == 201
    task = response.json()
    assert set(task) >= TASK_KEYS
    assert task["state"]["code"] == "READY"
    assert task["chain"] == api.sb.chain_id
    assert task["target"] == EXPORT_TARGET
    assert task["trigger"]["once"] == "2099-01-01T00:00:00Z"
    assert set(task["state"]) == {"code", "last_run_date", "last_modified", "created_date"}


def test_task_runs_once_due_and_ends_done(api: ApiClient) -> None:
    task = api.create()
    done = api.wait(task["id"])
    assert done["state"]["code"] == "DONE"
    assert done["state"]["last_run_date"] is not None
    assert done["version"] > task["version"]
    assert "Exported 1000 users" in done["logs"][-1]["message"]


def test_future_task_stays_ready_until_the_clock_reaches_once(api: ApiClient) -> None:
    task = api.create(once="2099-01-01T00:00:00Z")
    assert api.call("GET", f"/tasks/{task['id']}").json()["state"]["code"] == "READY"
    api.sb.clock.advance(200 * 365 * 86400)
    assert api.wait(task["id"])["state"]["code"] == "DONE"


def test_get_task_pages_logs_with_log_limit_and_offset(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    full = api.call("GET", f"/tasks/{task_id}").json()["logs"]
    assert len(full) == 3
    page = api.call("GET", f"/tasks/{task_id}", params={"log_limit": 1, "offset": 1}).json()
    assert page["logs"] == full[1:2]
    assert api.call("GET", f"/tasks/{task_id}", params={"log_limit": "x"}).status_code == 400


def test_list_tasks_is_a_bare_array_newest_first_filtered_and_paged(api: ApiClient) -> None:
    ready = api.create(once="2099-01-01T00:00:00Z")["id"]
    done = api.create()["id"]
    api.wait(done)
    everything = api.call("GET", "/tasks").json()
    assert isinstance(everything, list)
    assert [t["id"] for t in everything] == [done, ready]
    by_status = api.call("GET", "/tasks", params={"status": "READY"}).json()
    assert [t["id"] for t in by_status] == [ready]
    assert api.call("GET", "/tasks", params={"action": "import"}).json() == []
    assert api.call("GET", "/tasks", params={"action": "export"}).json() == everything
    paged = api.call("GET", "/tasks", params={"limit": 1, "offset": 1}).json()
    assert [t["id"] for t in paged] == [ready]
    assert api.call("GET", "/tasks", params={"campaign_id": "9"}).json() == []


def test_list_tasks_filters_by_campaign_id(api: ApiClient) -> None:
    body = api.body(once="2099-01-01T00:00:00Z")
    body["campaign_id"] = 9
    created = api.call("POST", "/tasks", json=body).json()
    api.create(once="2099-01-01T00:00:00Z")
    listed = api.call("GET", "/tasks", params={"campaign_id": "9"}).json()
    assert [t["id"] for t in listed] == [created["id"]]


def test_delete_task_answers_204_and_forgets_it(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    assert api.call("DELETE", f"/tasks/{task_id}").status_code == 204
    assert api.call("GET", f"/tasks/{task_id}").status_code == 404
    assert api.call("DELETE", f"/tasks/{task_id}").status_code == 404
    assert task_id not in api.sb.tasks


def test_delete_removes_the_export_file(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    url = api.download_url(task_id)
    path = api.sb.tasks[task_id].file
    assert path is not None
    assert path.exists()
    api.call("DELETE", f"/tasks/{task_id}")
    assert not path.exists()
    assert requests.get(url, timeout=10).status_code == 404


def test_execute_runs_a_ready_task_now_and_answers_its_final_state(api: ApiClient) -> None:
    task_id = api.create(once="2099-01-01T00:00:00Z")["id"]
    response = api.call("POST", f"/tasks/{task_id}/execute")
    assert response.status_code == 200
    state = response.json()
    assert state["code"] == "DONE"
    assert set(state) == {"code", "last_run_date", "last_modified", "created_date"}


def test_execute_waits_for_the_task_duration(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=50, task_base_seconds=0.3)
    api = ApiClient(sb)
    task_id = api.create(once="2099-01-01T00:00:00Z")["id"]
    assert api.call("POST", f"/tasks/{task_id}/execute").json()["code"] == "DONE"


def test_task_stays_inprogress_for_its_scaled_duration(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=2000, task_base_seconds=0.2, task_seconds_per_1k_users=0.2)
    api = ApiClient(sb)
    task_id = api.create()["id"]
    assert api.wait(task_id, ("INPROGRESS",))["state"]["code"] == "INPROGRESS"
    assert api.wait(task_id)["state"]["code"] == "DONE"
    task = sb.tasks[task_id]
    assert task.deadline is not None
    assert task.started_at is not None
    assert task.deadline - task.started_at == pytest.approx(0.6)


def test_a_task_records_when_it_became_done(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=50, task_base_seconds=0.5)
    api = ApiClient(sb)
    task_id = api.create()["id"]
    assert api.wait(task_id, ("INPROGRESS",))["state"]["code"] == "INPROGRESS"
    assert sb.tasks[task_id].done_at is None
    before_done = time.time()
    assert api.wait(task_id)["state"]["code"] == "DONE"
    done_at = sb.tasks[task_id].done_at
    assert done_at is not None
    assert before_done <= done_at <= time.time()


def test_download_url_is_409_until_done_and_404_for_unknown(api: ApiClient) -> None:
    task_id = api.create(once="2099-01-01T00:00:00Z")["id"]
    response = api.call("GET", f"/tasks/{task_id}/download_url")
    assert response.status_code == 409
    assert response.json()["error"]["name"] == "task_not_done"
    assert api.call("GET", "/tasks/999999/download_url").status_code == 404


def test_download_url_names_the_export_file(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    url = api.download_url(task_id)
    assert url.startswith(api.sb.storage_url + "/")
    assert f"/User_Export-{task_id}.csv?" in url


def test_unknown_extra_fields_are_kept_on_the_task(api: ApiClient) -> None:
    body = api.body(once=now_iso())
    body["campaign_id"] = 3
    task = api.call("POST", "/tasks", json=body).json()
    assert task["campaign_id"] == 3


def test_tasks_can_be_inspected_in_process(api: ApiClient) -> None:
    task_id = api.create()["id"]
    api.wait(task_id)
    task = api.sb.tasks[task_id]
    assert task.state["code"] == "DONE"
    assert task.trigger["once"].endswith("Z")
    assert task.rows == 1000
