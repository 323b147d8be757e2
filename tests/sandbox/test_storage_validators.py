"""``If-Range`` as HTTP reads it; faults that spoil a resume: Range ignored, object replaced."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from sandbox_client import ApiClient


def _url_whole_etag(api: ApiClient) -> tuple[str, bytes, str]:
    _, url = api.done_url()
    response = requests.get(url, timeout=10)
    return url, response.content, response.headers["ETag"]


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_if_range_with_the_objects_etag_sends_the_range(api: ApiClient) -> None:
    url, whole, etag = _url_whole_etag(api)
    response = requests.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    assert response.content == whole[100:]


@pytest.mark.parametrize(
    "validator",
    ['"0123456789abcdef0123456789abcdef"', "W/{etag}", "Wed, 21 Oct 2026 07:28:00 GMT"],
    ids=["another-etag", "weak-etag", "date"],
)
def test_if_range_that_does_not_hold_sends_the_whole_file(api: ApiClient, validator: str) -> None:
    url, whole, etag = _url_whole_etag(api)
    headers = {"Range": "bytes=100-", "If-Range": validator.format(etag=etag)}
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert int(response.headers["Content-Length"]) == len(whole)
    assert response.content == whole


def test_if_range_that_does_not_hold_beats_an_unsatisfiable_range(api: ApiClient) -> None:
    url, whole, _ = _url_whole_etag(api)
    headers = {"Range": f"bytes={len(whole) + 5}-", "If-Range": '"other"'}
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.content == whole


def test_ignore_if_range_sends_the_range_once_though_if_range_does_not_hold(
    api: ApiClient,
) -> None:
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("ignore_if_range")
    held = requests.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=10)
    assert held.status_code == 206  # If-Range holds: the fault is not needed, nor used up
    assert [f["kind"] for f in api.control("GET", "/faults").json()] == ["ignore_if_range"]
    stale = {"Range": "bytes=100-", "If-Range": '"0123456789abcdef0123456789abcdef"'}
    ignored = requests.get(url, headers=stale, timeout=10)
    assert ignored.status_code == 206
    assert ignored.content == whole[100:]
    assert api.control("GET", "/faults").json() == []
    assert requests.get(url, headers=stale, timeout=10).status_code == 200


def test_ignore_range_answers_a_ranged_get_whole_once(api: ApiClient) -> None:
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("ignore_range")
    assert requests.get(url, timeout=10).content == whole  # a plain GET does not use it up
    assert [f["kind"] for f in api.control("GET", "/faults").json()] == ["ignore_range"]
    ignored = requests.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=10)
    assert ignored.status_code == 200
    assert "Content-Range" not in ignored.headers
    assert int(ignored.headers["Content-Length"]) == len(whole)
    assert ignored.content == whole
    assert api.control("GET", "/faults").json() == []
    honoured = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert honoured.status_code == 206


def test_object_replaced_changes_the_etag_so_if_range_gets_the_new_file(api: ApiClient) -> None:
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("object_replaced")
    assert requests.get(url, timeout=10).content == whole  # a plain GET does not use it up
    response = requests.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=10)
    assert response.status_code == 200
    new = response.content
    assert response.headers["ETag"] == f'"{_md5(new)}"' != etag
    assert len(new) == len(whole)
    old_rows, new_rows = _rows(whole), _rows(new)
    assert len(old_rows) > 2
    assert new_rows[0] == old_rows[0]  # the header stays first
    assert new_rows[1:] == old_rows[:0:-1]  # the same users, rows in reverse order
    assert api.control("GET", "/faults").json() == []
    assert requests.get(url, timeout=10).content == new  # replaced for good


def test_object_replaced_without_if_range_sends_the_range_of_the_new_file(api: ApiClient) -> None:
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("object_replaced")
    response = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert response.status_code == 206
    assert response.headers["ETag"] != etag
    new = requests.get(url, timeout=10).content
    assert response.content == new[100:] != whole[100:]


def test_object_replaced_keeps_a_gzip_file_gzip(api: ApiClient) -> None:
    api.sb.inject("gzip", mode="raw")
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("object_replaced")
    response = requests.get(url, headers={"Range": "bytes=10-", "If-Range": etag}, timeout=10)
    assert response.status_code == 200
    old_rows = _rows(gzip.decompress(whole))
    assert _rows(gzip.decompress(response.content)) == old_rows[:1] + old_rows[:0:-1]


def test_object_replaced_keeps_the_bom_and_crlf_of_the_dialect(api: ApiClient) -> None:
    assert api.control("POST", "/dialect", json={"bom": True, "crlf": True}).ok
    url, whole, etag = _url_whole_etag(api)
    api.sb.inject("object_replaced")
    new = requests.get(url, headers={"Range": "bytes=10-", "If-Range": etag}, timeout=10).content
    assert new.startswith(b"\xef\xbb\xbf")
    assert new.endswith(b"\r\n")
    assert new.count(b"\r\n") == whole.count(b"\r\n")
    assert _rows(new[3:]) == _rows(whole[3:])[:1] + _rows(whole[3:])[:0:-1]
