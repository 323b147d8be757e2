"""The storage endpoint: pre-signed URLs, expiry, tampering, Authorization, Range."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory
from sandbox_client import ApiClient


def _done_url(api: ApiClient) -> tuple[int, str]:
    task_id = api.create()["id"]
    api.wait(task_id)
    return task_id, api.download_url(task_id)


def test_download_serves_the_csv_with_content_length(api: ApiClient) -> None:
    task_id, url = _done_url(api)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert f"User_Export-{task_id}.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert len(rows) == 1000
    assert rows == api.sb.users()


def test_range_from_an_offset_answers_206_with_the_rest(api: ApiClient) -> None:
    _, url = _done_url(api)
    whole = requests.get(url, timeout=10).content
    response = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert response.status_code == 206
    assert response.content == whole[100:]
    assert response.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    assert int(response.headers["Content-Length"]) == len(whole) - 100


def test_range_with_an_end_and_an_unsatisfiable_range(api: ApiClient) -> None:
    _, url = _done_url(api)
    whole = requests.get(url, timeout=10).content
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.content == whole[10:20]
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=10)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"


def test_head_answers_the_length_without_a_body(api: ApiClient) -> None:
    _, url = _done_url(api)
    head = requests.head(url, timeout=10)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(requests.get(url, timeout=10).content)
    assert head.content == b""


def test_expired_url_answers_403_xml(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=20, url_ttl_seconds=60)
    api = ApiClient(sb)
    _, url = _done_url(api)
    assert requests.get(url, timeout=10).status_code == 200
    sb.clock.advance(61)
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "Request has expired" in response.text
    assert response.headers["Content-Type"].startswith("application/xml")


def test_fresh_url_after_expiry_works(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=20, url_ttl_seconds=60)
    api = ApiClient(sb)
    task_id, _ = _done_url(api)
    sb.clock.advance(3600)
    assert requests.get(api.download_url(task_id), timeout=10).status_code == 200


def test_url_ttl_is_in_the_query(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory(users=5, url_ttl_seconds=5)
    _, url = _done_url(ApiClient(sb))
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["5"]
    assert "X-Amz-Signature" in query


def _tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_tampered_url_answers_403_signature_does_not_match(api: ApiClient) -> None:
    task_id, url = _done_url(api)
    for bad in (
        _tampered(url, **{"X-Amz-Expires": "999999"}),
        _tampered(url, **{"X-Amz-Signature": "0" * 64}),
        url.replace(f"User_Export-{task_id}", f"User_Export-{task_id + 1}"),
        url.split("?")[0],
    ):
        response = requests.get(bad, timeout=10)
        assert response.status_code == 403, bad
        assert "<Code>AccessDenied</Code>" in response.text
        assert "signature does not match" in response.text


def test_authorization_header_on_storage_answers_400_invalid_argument(api: ApiClient) -> None:
    _, url = _done_url(api)
    response = requests.get(url, headers={"Authorization": api.auth}, timeout=10)
    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    assert "Only one auth mechanism allowed" in response.text


def test_storage_requests_are_recorded_with_their_headers(api: ApiClient) -> None:
    _, url = _done_url(api)
    requests.get(url, headers={"Range": "bytes=5-"}, timeout=10)
    last = api.sb.requests[-1]
    assert last.server == "storage"
    assert last.status == 206
    assert last.headers["Range"] == "bytes=5-"
    assert "X-Amz-Signature" in last.query
