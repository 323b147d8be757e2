"""Chain-scoped bearer auth: 401 missing/malformed/wrong, 403 other chain, 404 its tasks."""

from __future__ import annotations

import pytest
import requests
from sandbox_client import ApiClient, segment_of

ENDPOINTS = [
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("GET", "/tasks/1001"),
    ("DELETE", "/tasks/1001"),
    ("POST", "/tasks/1001/execute"),
    ("GET", "/tasks/1001/download_url"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_answers_401_without_credentials(
    api: ApiClient, method: str, path: str
) -> None:
    response = requests.request(method, api.sb.url + path, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["name"] == "missing_credentials"
    assert response.json()["error"]["code"] == 401


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Bearer", "Bearer only-an-id", "bearer x:y z", "Token a:b"],
)
def test_malformed_authorization_answers_401(api: ApiClient, header: str) -> None:
    response = requests.get(api.sb.url + "/tasks", headers={"Authorization": header}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["name"] == "malformed_credentials"


def test_wrong_secret_or_unknown_token_answers_401_without_echoing_it(api: ApiClient) -> None:
    for client in (
        ApiClient(api.sb, secret="wrong-secret"),  # noqa: S106 - a deliberately wrong secret
        ApiClient(api.sb, token_id="00000000-0000-0000-0000-000000000000"),  # noqa: S106
    ):
        response = client.call("GET", "/tasks")
        assert response.status_code == 401
        assert response.json()["error"]["name"] == "invalid_credentials"
        assert api.sb.token_secret not in response.text
        assert "wrong-secret" not in response.text


def test_token_id_is_a_uuid_and_tap_config_carries_the_credentials(api: ApiClient) -> None:
    import uuid  # noqa: PLC0415

    assert str(uuid.UUID(api.sb.token_id)) == api.sb.token_id
    config = api.sb.tap_config(start_date="2024-01-01")
    assert config["access_token_id"] == api.sb.token_id
    assert config["access_token_secret"] == api.sb.token_secret
    assert config["api_url"] == api.sb.url
    assert config["chain_id"] == api.sb.chain_id
    assert config["poll_interval_seconds"] == 0.05
    assert config["start_date"] == "2024-01-01"


def test_another_chain_in_the_body_answers_403(api: ApiClient) -> None:
    body = api.body()
    body["chain"] = api.sb.other_chain_id
    response = api.call("POST", "/tasks", json=body)
    assert response.status_code == 403
    assert response.json()["error"]["name"] == "forbidden"


def test_another_chain_in_the_segment_answers_403(api: ApiClient) -> None:
    body = api.body(segment_of(chain_id=api.sb.other_chain_id))
    assert api.call("POST", "/tasks", json=body).status_code == 403


def test_another_chains_task_is_not_found(api: ApiClient) -> None:
    mine = api.create()["id"]
    api.wait(mine)
    other = ApiClient(api.sb, api.sb.other_token_id, api.sb.other_token_secret)
    for method, suffix in (
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/execute"),
        ("GET", "/download_url"),
    ):
        response = other.call(method, f"/tasks/{mine}{suffix}")
        assert response.status_code == 404, (method, suffix)
        assert response.json()["error"]["name"] == "task_not_found"
    assert other.call("GET", "/tasks").json() == []
    assert api.call("GET", f"/tasks/{mine}").status_code == 200


def test_other_chain_token_works_for_its_own_chain(api: ApiClient) -> None:
    other = ApiClient(api.sb, api.sb.other_token_id, api.sb.other_token_secret)
    body = other.body()
    body["chain"] = api.sb.other_chain_id
    response = other.call("POST", "/tasks", json=body)
    assert response.status_code == 201
    assert response.json()["chain"] == api.sb.other_chain_id
