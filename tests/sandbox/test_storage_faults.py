"""Storage misbehaviours: early close, broken gzip, drip, bandwidth, ETag and corruption."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests
from sandbox_client import ApiClient

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """GET with http.client: the response (headers) and the bytes that arrived before the end."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}", headers=headers or {})
    response = conn.getresponse()
    try:
        body = response.read()
    except http.client.IncompleteRead as error:
        body = error.partial
    finally:
        conn.close()
    return response, body


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _gzip(data: bytes) -> bytes:
    """Compress as the sandbox does (a gzip stream with no name and mtime 0)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed:
        packed.write(data)
    return buffer.getvalue()


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_early_close_ends_at_a_line_boundary_with_no_content_length(
    api: ApiClient, framing: str
) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.sb.inject("early_close", framing=framing, times=2)
    for _ in range(2):
        response, body = _get(url)
        assert response.status == 200
        assert response.getheader("Content-Length") is None
        chunked = response.getheader("Transfer-Encoding") == "chunked"
        assert chunked is (framing == "chunked")
        assert response.getheader("ETag") == f'"{_md5(whole)}"'
        assert whole.startswith(body)
        assert body.endswith(b"\n")
        assert len(whole) // 2 - 1000 < len(body) <= len(whole) // 2
    assert requests.get(url, timeout=10).content == whole  # a library sees no error either


def test_early_close_after_n_bytes_keeps_whole_lines_only(api: ApiClient) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.sb.inject("early_close", after_bytes=5000)
    body = requests.get(url, timeout=10).content
    assert body == whole[: whole.rindex(b"\n", 0, 5000) + 1]


@pytest.mark.parametrize("content_length", ["sent", "full", "none"])
def test_bad_gzip_truncated(api: ApiClient, content_length: str) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    full = _gzip(whole)
    api.sb.inject("bad_gzip", problem="truncated", content_length=content_length)
    response, body = _get(url)
    assert response.getheader("Content-Encoding") == "gzip"
    assert body == full[: len(full) // 2]
    declared = {"sent": str(len(body)), "full": str(len(full)), "none": None}[content_length]
    assert response.getheader("Content-Length") == declared
    with pytest.raises(EOFError):
        gzip.decompress(body)
    assert requests.get(url, timeout=10).content == whole  # N=1: the next download is good


def test_bad_gzip_bad_crc_raw_for_n_downloads(api: ApiClient) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.control("POST", "/faults", json={"kind": "bad_gzip", "problem": "bad_crc", "mode": "raw",
                                         "times": 2})  # fmt: skip
    for _ in range(2):
        response, body = _get(url)
        assert response.getheader("Content-Encoding") is None
        assert int(response.getheader("Content-Length") or -1) == len(body)
        assert body[:2] == b"\x1f\x8b"
        with pytest.raises(gzip.BadGzipFile, match="CRC"):
            gzip.decompress(body)
        intact = _gzip(whole)
        assert body[:-8] == intact[:-8]  # only the CRC32 of the trailer differs
        assert body[-8:-4] != intact[-8:-4]
        assert body[-4:] == intact[-4:]
    assert requests.get(url, timeout=10).content == whole


def test_slow_download_drips_a_tiny_rate_for_n_downloads(api: ApiClient) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.sb.inject("slow_download", bytes_per_second=40, times=2)
    for left in (1, 0):
        with requests.get(url, timeout=10, stream=True) as response:
            started = time.monotonic()
            first = response.raw.read(40)
            assert len(first) == 40
            assert time.monotonic() - started >= 0.8
        armed = api.control("GET", "/faults").json()
        assert [f["times"] for f in armed if f["kind"] == "slow_download"] == (
            [left] if left else []
        )
    assert requests.get(url, timeout=10).content == whole  # the fault is used up: not slowed


def test_storage_bandwidth_is_shared_by_every_body(sandbox_factory: SandboxFactory) -> None:
    api = ApiClient(sandbox_factory(users=300))
    _, url = api.done_url()
    size = len(requests.get(url, timeout=10).content)
    api.sb.set_options(storage_bytes_per_second=size * 2)  # each body alone: 0.5 s
    sizes: list[int] = []

    def fetch() -> None:
        sizes.append(len(requests.get(url, timeout=60).content))

    started = time.monotonic()
    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.9 <= time.monotonic() - started < 10.0  # ~1 s: both bodies through one link
    assert sizes == [size, size]
    unlimited = api.control("POST", "/options", json={"storage_bytes_per_second": None})
    assert unlimited.json()["storage_bytes_per_second"] is None
    assert api.control("GET", "/options").json()["storage_bytes_per_second"] is None
    assert api.sb.options.storage_bytes_per_second is None
    assert len(requests.get(url, timeout=10).content) == size


def test_storage_bandwidth_as_a_sandbox_argument(sandbox_factory: SandboxFactory) -> None:
    api = ApiClient(sandbox_factory(users=300, storage_bytes_per_second=50_000))
    _, url = api.done_url()
    started = time.monotonic()
    size = len(requests.get(url, timeout=10).content)
    assert time.monotonic() - started >= size / 50_000 * 0.9
    assert api.control("GET", "/options").json()["storage_bytes_per_second"] == 50_000


def test_etag_is_the_md5_of_the_stored_object(api: ApiClient) -> None:
    _, url = api.done_url()
    response = requests.get(url, timeout=10)
    etag = response.headers["ETag"]
    assert etag == f'"{_md5(response.content)}"'
    assert len(etag.strip('"')) == 32
    assert requests.get(url, headers={"Range": "bytes=10-"}, timeout=10).headers["ETag"] == etag
    assert requests.head(url, timeout=10).headers["ETag"] == etag
    api.sb.inject("gzip", mode="content-encoding")
    _, gz_url = api.done_url()
    packed = requests.get(gz_url, timeout=10, stream=True)
    raw = packed.raw.read(decode_content=False)
    assert packed.headers["ETag"] == f'"{_md5(raw)}"'


def test_corrupt_body_keeps_length_and_etag_but_not_the_bytes(api: ApiClient) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.sb.inject("corrupt_body", at_byte=1000)
    response, body = _get(url)
    assert int(response.getheader("Content-Length") or -1) == len(body) == len(whole)
    assert response.getheader("ETag") == f'"{_md5(whole)}"'
    changed = [i for i, (a, b) in enumerate(zip(whole, body, strict=True)) if a != b]
    assert len(changed) == 1
    assert changed[0] >= 1000
    assert chr(body[changed[0]]).isalnum()
    assert requests.get(url, timeout=10).content == whole


def test_range_from_the_end_answers_416(api: ApiClient) -> None:
    _, url = api.done_url()
    size = len(requests.get(url, timeout=10).content)
    beyond = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=10)
    assert beyond.status_code == 416
    assert "<Code>InvalidRange</Code>" in beyond.text
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
