"""The export download over real sockets, against a local server scripted per request."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import requests
from support.ports import refusing_port
from support.spooled import Fetched, fetch_to

from tap_spaaza_users.download.statuses import retry_after
from tap_spaaza_users.download.storage import redact_url
from tap_spaaza_users.errors import SpaazaDownloadError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

LOGGER = logging.getLogger("test_download")
BODY = bytes(range(256)) * 400  # 102,400 bytes
SIGNED = "X-Amz-Signature=deadbeefcafe&X-Amz-Expires=3600"
USER_AGENT = "tap-spaaza-users/test"


def fetch(
    urls: Callable[[], str],
    dest: Path,
    *,
    max_retries: int = 5,
    max_url_refreshes: int = 3,
    timeout: float = 5.0,
) -> Fetched:
    """Download with short timeouts and backoff, as every test here wants."""
    return fetch_to(
        urls,
        dest,
        timeout=timeout,
        user_agent=USER_AGENT,
        logger=LOGGER,
        max_url_refreshes=max_url_refreshes,
        max_retries=max_retries,
        backoff_base=0.01,
        backoff_cap=0.02,
    )


class LocalStorage:
    """A threaded HTTP server whose answers are scripted per request number."""

    def __init__(self) -> None:
        """Bind to a free loopback port; set `script` before the first request."""
        self.script: Callable[[BaseHTTPRequestHandler, int], None] = lambda _h, _n: None
        self.requests: list[dict[str, Any]] = []
        storage = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                """Record the request and answer as scripted."""
                storage.requests.append({"path": self.path, "headers": dict(self.headers)})
                storage.script(self, len(storage.requests))

            def log_message(self, *args: object) -> None:
                """Keep the test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base(self) -> str:
        """The server's scheme://host:port."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/bucket/User_Export-1.csv") -> str:
        """A signed-looking URL on this server."""
        return f"{self.base}{path}?{SIGNED}"


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> None:
    """Answer with `body`, announcing `length` bytes (a larger length makes a short body)."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    if length is not None and length != len(body):
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def storage() -> Iterator[LocalStorage]:
    server = LocalStorage()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_redirect_to_plain_http_is_refused(storage: LocalStorage, tmp_path: Path) -> None:
    def script(handler: BaseHTTPRequestHandler, _n: int) -> None:
        if handler.path.startswith("/elsewhere"):
            send(handler, 200, BODY)
        else:
            send(handler, 302, headers={"Location": f"{server.base}/elsewhere?{SIGNED}"})

    server = storage
    server.script = script
    with pytest.raises(
        SpaazaDownloadError, match=r"^Export download failed: storage redirected to a non-https URL"
    ) as caught:
        fetch(server.url, tmp_path / "f.csv")
    assert [r["path"].split("?")[0] for r in server.requests] == ["/bucket/User_Export-1.csv"]
    assert SIGNED not in str(caught.value)


def test_no_authorization_or_cookies_ever_reach_storage(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    monkeypatch.setenv("NETRC", str(netrc))

    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        cookie = {"Set-Cookie": f"session{n}=abc; Path=/"}
        if n == 1:
            send(handler, 403, b"<Error><Code>AccessDenied</Code></Error>", cookie)
        elif n == 2:
            send(handler, 200, BODY[:1000], cookie, length=len(BODY))
        else:
            start = int(handler.headers["Range"].split("=")[1].rstrip("-"))
            rng = {"Content-Range": f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"}
            send(handler, 206, BODY[start:], cookie | rng)

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert result.url_refreshes == 1
    assert result.resumes == 1
    assert len(server.requests) == 3
    for request in server.requests:
        names = {name.lower() for name in request["headers"]}
        assert "authorization" not in names
        assert "cookie" not in names
        assert request["headers"]["User-Agent"] == "tap-spaaza-users/test"


def test_server_ignoring_range_restarts_the_file(storage: LocalStorage, tmp_path: Path) -> None:
    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            send(handler, 200, BODY[:5000], length=len(BODY))
        else:
            send(handler, 200, BODY)

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv")
    assert server.requests[1]["headers"]["Range"] == "bytes=5000-"
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert result.bytes == len(BODY)


def test_stalled_body_times_out_and_resumes(storage: LocalStorage, tmp_path: Path) -> None:
    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            send(handler, 200, BODY[:7000], length=len(BODY))
            handler.wfile.flush()
            time.sleep(0.6)  # longer than the read timeout
        else:
            rng = {"Content-Range": f"bytes 7000-{len(BODY) - 1}/{len(BODY)}"}
            send(handler, 206, BODY[7000:], rng)

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv", timeout=0.2)
    assert result.resumes == 1
    assert server.requests[1]["headers"]["Range"] == "bytes=7000-"
    assert (tmp_path / "f.csv").read_bytes() == BODY


def test_resume_asks_if_range_and_a_changed_file_restarts(
    storage: LocalStorage, tmp_path: Path
) -> None:
    changed = BODY[::-1]

    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            send(handler, 200, BODY[:3000], {"ETag": '"v1"'}, length=len(BODY))
        else:  # the object was replaced: If-Range does not match, so the whole new file
            send(handler, 200, changed, {"ETag": '"v2"'})

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv")
    assert server.requests[1]["headers"]["If-Range"] == '"v1"'
    assert server.requests[1]["headers"]["Range"] == "bytes=3000-"
    assert (tmp_path / "f.csv").read_bytes() == changed
    assert result.bytes == len(changed)


def test_range_past_the_end_means_the_file_is_complete(
    storage: LocalStorage, tmp_path: Path
) -> None:
    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:  # announces 10 bytes more than the file holds
            send(handler, 200, BODY, length=len(BODY) + 10)
        else:
            send(handler, 416, b"", {"Content-Range": f"bytes */{len(BODY)}"})

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_bytes() == BODY
    assert result.resumes == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_statuses_are_retried(storage: LocalStorage, tmp_path: Path, status: int) -> None:
    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        send(handler, status, b"busy") if n <= 2 else send(handler, 200, BODY)

    server = storage
    server.script = script
    result = fetch(server.url, tmp_path / "f.csv")
    assert result.retries == 2
    assert (tmp_path / "f.csv").read_bytes() == BODY


def test_persistent_5xx_ends_in_a_clear_error(storage: LocalStorage, tmp_path: Path) -> None:
    server = storage
    server.script = lambda handler, _n: send(handler, 503, b"down")
    with pytest.raises(
        SpaazaDownloadError, match=r"HTTP 503 \(after 0 URL refreshes, 0 resumes, 2 retries\)"
    ):
        fetch(server.url, tmp_path / "f.csv", max_retries=2)
    assert len(server.requests) == 3


def test_unexpected_status_fails_at_once(storage: LocalStorage, tmp_path: Path) -> None:
    server = storage
    server.script = lambda handler, _n: send(handler, 404, b"<Code>NoSuchKey</Code>")
    with pytest.raises(SpaazaDownloadError, match="HTTP 404"):
        fetch(server.url, tmp_path / "f.csv")
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/bucket/f.csv?{SIGNED}"
        with pytest.raises(SpaazaDownloadError, match="connection failed") as caught:
            fetch(lambda: url, tmp_path / "f.csv", max_retries=1)
    shown = "".join(traceback.format_exception(caught.value))
    assert "connection failed" in shown
    assert "deadbeef" not in shown


def test_signed_query_never_logged_even_at_debug(
    storage: LocalStorage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def script(handler: BaseHTTPRequestHandler, n: int) -> None:
        send(handler, 200, BODY[:100], length=len(BODY)) if n == 1 else send(handler, 200, BODY)

    server = storage
    server.script = script
    with caplog.at_level(logging.DEBUG):
        fetch(server.url, tmp_path / "f.csv")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "urllib3" in {record.name.split(".")[0] for record in caplog.records}
    assert "/bucket/User_Export-1.csv" in text
    assert "deadbeef" not in text
    assert "X-Amz-Signature" not in text
    assert "Downloaded export file: 102400 bytes" in text


def test_redact_url_keeps_scheme_host_port_and_path_only() -> None:
    url = "https://user:pw@storage.example:8443/b/User_Export-3.csv?X-Amz-Signature=abc#frag"
    assert redact_url(url) == "https://storage.example:8443/b/User_Export-3.csv"


def test_malformed_url_fails_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(SpaazaDownloadError, match="request failed") as caught:
        fetch(lambda: f"htp:/nowhere?{SIGNED}", tmp_path / "f.csv")
    assert "deadbeef" not in "".join(traceback.format_exception(caught.value))


def test_storage_retry_after_reads_seconds_and_http_dates() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = "7"
    assert retry_after(response) == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    response.headers["Retry-After"] = later
    assert 25 < (retry_after(response) or 0) <= 30
    response.headers["Retry-After"] = "soon"
    assert retry_after(response) is None
