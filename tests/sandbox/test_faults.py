"""Fault injection: each kind, one-shot or N times, scoped by method and path."""

from __future__ import annotations

import csv
import gzip
import http.client
import io
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests
from sandbox_client import ApiClient

from tap_spaaza_users.sandbox.app import retry_after_date

if TYPE_CHECKING:
    from collections.abc import Callable

    from sandbox_client import SandboxFactory


def _done_url(api: ApiClient) -> tuple[int, str]:
    task_id = api.create()["id"]
    api.wait(task_id)
    return task_id, api.download_url(task_id)


def _raw_get(url: str) -> tuple[int, int, bytes]:
    """GET with http.client: (status, Content-Length, the bytes that actually arrived)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}")
    response = conn.getresponse()
    try:
        body = response.read()
    except http.client.IncompleteRead as error:
        body = error.partial
    finally:
        conn.close()
    return response.status, int(response.headers["Content-Length"]), body


def test_status_429_with_retry_after_seconds_is_one_shot(api: ApiClient) -> None:
    api.sb.inject("status", status=429, retry_after=7)
    first = api.call("GET", "/tasks")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.json()["error"]["name"] == "too_many_requests"
    assert api.call("GET", "/tasks").status_code == 200


def test_status_429_with_an_http_date(api: ApiClient) -> None:
    api.sb.inject("status", status=429, retry_after=retry_after_date(30))
    response = api.call("GET", "/tasks")
    assert response.status_code == 429
    assert parsedate_to_datetime(response.headers["Retry-After"]).tzinfo is not None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_fires_the_given_number_of_times(api: ApiClient, status: int) -> None:
    api.sb.inject("status", status=status, times=2)
    assert [api.call("GET", "/tasks").status_code for _ in range(3)] == [status, status, 200]


def test_status_fault_scoped_by_method_and_path(api: ApiClient) -> None:
    api.sb.inject("status", status=503, method="GET", path="/tasks/*")
    assert api.call("GET", "/tasks").status_code == 200
    task_id = api.create()["id"]
    assert api.call("GET", f"/tasks/{task_id}").status_code == 503
    assert api.call("GET", f"/tasks/{task_id}").status_code == 200


def test_status_fault_with_a_plain_body(api: ApiClient) -> None:
    api.sb.inject("status", status=502, body="<html>Bad Gateway</html>")
    response = api.call("GET", "/tasks")
    assert response.status_code == 502
    assert response.text == "<html>Bad Gateway</html>"


def test_faulted_requests_are_recorded_with_their_status(api: ApiClient) -> None:
    api.sb.inject("status", status=500)
    api.call("GET", "/tasks", headers={"User-Agent": "tap-spaaza-users/0.1.0"})
    last = api.sb.requests[-1]
    assert (last.server, last.method, last.path, last.status) == ("api", "GET", "/tasks", 500)
    assert last.headers["User-Agent"] == "tap-spaaza-users/0.1.0"


def test_drop_connection_after_n_bytes(api: ApiClient) -> None:
    _, url = _done_url(api)
    api.sb.inject("drop_connection", after_bytes=100)
    status, length, body = _raw_get(url)
    assert status == 200
    assert len(body) == 100 < length
    assert _raw_get(url)[2] == requests.get(url, timeout=10).content


def test_short_body_sends_fewer_bytes_than_content_length(api: ApiClient) -> None:
    _, url = _done_url(api)
    api.sb.inject("short_body", missing_bytes=10)
    status, length, body = _raw_get(url)
    assert status == 200
    assert len(body) == length - 10


def test_url_expired_answers_403_once_even_for_a_fresh_url(api: ApiClient) -> None:
    _, url = _done_url(api)
    api.sb.inject("url_expired")
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert "Request has expired" in response.text
    assert requests.get(url, timeout=10).status_code == 200


def test_storage_status_answers_s3_style_errors_then_serves_the_file(api: ApiClient) -> None:
    _, url = _done_url(api)
    api.sb.inject("storage_status", status=503, retry_after=2, times=2)

    first, second = requests.get(url, timeout=10), requests.get(url, timeout=10)
    third = requests.get(url, timeout=10)

    assert [first.status_code, second.status_code] == [503, 503]
    assert first.headers["Retry-After"] == "2"
    assert "<Error>" in first.text
    assert third.status_code == 200
    assert [r.status for r in api.sb.requests if r.server == "storage"][-3:] == [503, 503, 200]


def test_task_error_ends_the_next_task_in_error_with_log_lines(api: ApiClient) -> None:
    api.sb.inject("task_error", logs=["Elasticsearch timeout", "Export aborted"])
    failed = api.wait(api.create()["id"])
    assert failed["state"]["code"] == "ERROR"
    errors = [e for e in failed["logs"] if e["level"] == "ERROR"]
    assert [e["message"] for e in errors] == ["Elasticsearch timeout", "Export aborted"]
    assert all(e["date"].endswith("Z") for e in errors)
    assert api.call("GET", f"/tasks/{failed['id']}/download_url").status_code == 409
    assert api.wait(api.create()["id"])["state"]["code"] == "DONE"


def test_task_error_through_execute(api: ApiClient) -> None:
    api.sb.inject("task_error")
    task_id = api.create(once="2099-01-01T00:00:00Z")["id"]
    assert api.call("POST", f"/tasks/{task_id}/execute").json()["code"] == "ERROR"


def test_task_stuck_keeps_the_next_task_in_progress(api: ApiClient) -> None:
    api.sb.inject("task_stuck", seconds=0.6)
    task_id = api.create()["id"]
    started = time.monotonic()
    api.wait(task_id, ("INPROGRESS",))
    time.sleep(0.3)
    assert api.call("GET", f"/tasks/{task_id}").json()["state"]["code"] == "INPROGRESS"
    assert api.wait(task_id)["state"]["code"] == "DONE"
    assert time.monotonic() - started >= 0.6


def test_task_stuck_can_report_an_undocumented_state_until_done(api: ApiClient) -> None:
    api.sb.inject("task_stuck", seconds=0.6, code="QUEUED")
    task_id = api.create()["id"]
    api.wait(task_id, ("QUEUED",))
    assert api.sb.tasks[task_id].code == "INPROGRESS"  # what the sandbox does meanwhile
    assert api.wait(task_id)["state"]["code"] == "DONE"


def test_gzip_content_encoding(api: ApiClient) -> None:
    api.sb.inject("gzip", mode="content-encoding")
    _, url = _done_url(api)
    response = requests.get(url, timeout=10, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    raw = response.raw.read(decode_content=False)
    assert raw[:2] == b"\x1f\x8b"
    assert int(response.headers["Content-Length"]) == len(raw)
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode("utf-8"))))
    assert rows == api.sb.users()


def test_gzip_raw_file_without_a_header(api: ApiClient) -> None:
    api.sb.inject("gzip", mode="raw")
    _, url = _done_url(api)
    response = requests.get(url, timeout=10)
    assert "Content-Encoding" not in response.headers
    assert response.content[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.content).startswith(b"id,member_number,")
    assert (
        requests.get(url, headers={"Range": "bytes=2-"}, timeout=10).content == response.content[2:]
    )


def test_slow_download_throttles_the_body(sandbox_factory: SandboxFactory) -> None:
    api = ApiClient(sandbox_factory(users=10))
    _, url = _done_url(api)
    size = len(requests.get(url, timeout=10).content)
    api.sb.inject("slow_download", bytes_per_second=size * 2)
    started = time.monotonic()
    assert len(requests.get(url, timeout=10).content) == size
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"rows": [2], "problem": "field_count"}, lambda row: len(row) == 44),
        ({"rows": [2], "problem": "bad_value", "column": "overall"},
         lambda row: row[24] == "not-a-number"),
        ({"rows": [2], "problem": "bad_value", "column": "created_date"},
         lambda row: row[10] == "yesterday"),
    ],
)  # fmt: skip
def test_malformed_rows(
    api: ApiClient, params: dict[str, Any], check: Callable[[list[str]], bool]
) -> None:
    api.sb.inject("malformed_rows", **params)
    text = api.export().content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows[0]) == 45
    assert len(rows[1]) == 45
    assert check(rows[2])
    assert all(len(r) == 45 for r in rows[3:])


def test_faults_can_be_listed_and_cleared(api: ApiClient) -> None:
    api.sb.inject("status", status=500, times=3)
    api.sb.inject("task_stuck", seconds=1)
    assert [f.kind for f in api.sb.faults.armed()] == ["status", "task_stuck"]
    api.sb.clear_faults()
    assert api.sb.faults.armed() == []
    assert api.call("GET", "/tasks").status_code == 200


def test_unknown_fault_kind_is_refused(api: ApiClient) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        api.sb.inject("meteor")


@pytest.mark.parametrize(
    ("kind", "params"),
    [("status", {"status": 99}), ("gzip", {"mode": "brotli"}),
     ("malformed_rows", {"problem": "upside_down"}), ("url_expired", {"times": 0})],
)  # fmt: skip
def test_impossible_fault_parameters_are_refused(
    api: ApiClient, kind: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        api.sb.inject(kind, **params)
