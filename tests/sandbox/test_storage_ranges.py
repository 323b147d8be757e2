"""``Range`` as S3 and HTTP read it: suffix ranges, and invalid ranges ignored (200, whole body)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from sandbox_client import ApiClient


def _url_and_whole(api: ApiClient) -> tuple[str, bytes]:
    _, url = api.done_url()
    whole: bytes = requests.get(url, timeout=10).content
    return url, whole


@pytest.mark.parametrize("header", ["bytes=5-3", "bytes=0-1,5-6", "bytes=-", "lines=1-2"])
def test_invalid_range_is_ignored_and_the_whole_body_sent(api: ApiClient, header: str) -> None:
    url, whole = _url_and_whole(api)
    response = requests.get(url, headers={"Range": header}, timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(whole)
    assert "Content-Range" not in response.headers
    assert response.content == whole


def test_suffix_range_serves_the_last_bytes(api: ApiClient) -> None:
    url, whole = _url_and_whole(api)
    response = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert response.status_code == 206
    assert response.content == whole[-10:]
    size = len(whole)
    assert response.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert int(response.headers["Content-Length"]) == 10


def test_suffix_range_longer_than_the_file_serves_all_of_it(api: ApiClient) -> None:
    url, whole = _url_and_whole(api)
    response = requests.get(url, headers={"Range": f"bytes=-{len(whole) + 5}"}, timeout=10)
    assert response.status_code == 206
    assert response.content == whole
    assert response.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"


def test_empty_suffix_range_is_unsatisfiable(api: ApiClient) -> None:
    url, whole = _url_and_whole(api)
    response = requests.get(url, headers={"Range": "bytes=-0"}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
