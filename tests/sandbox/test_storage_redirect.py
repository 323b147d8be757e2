"""The ``redirect`` storage fault: a 3xx with a ``Location``, then the file once it is used up."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from sandbox_client import ApiClient


def test_redirect_points_at_the_same_signed_url_by_default(api: ApiClient) -> None:
    _, url = api.done_url()
    whole = requests.get(url, timeout=10).content
    api.sb.inject("redirect")
    moved = requests.get(url, timeout=10, allow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["Location"] == url
    assert "<Code>TemporaryRedirect</Code>" in moved.text
    assert api.control("GET", "/faults").json() == []
    followed = requests.get(url, timeout=10)  # a client that follows gets the file
    assert followed.content == whole
    assert [r.status for r in api.sb.requests if r.server == "storage"] == [200, 302, 200]


def test_redirect_status_and_location_for_n_requests(api: ApiClient) -> None:
    _, url = api.done_url()
    target = "https://storage.example.com/elsewhere/User_Export.csv?X-Amz-Signature=abc"
    armed = api.control(
        "POST", "/faults", json={"kind": "redirect", "status": 301, "location": target, "times": 2}
    )
    assert armed.status_code == 200, armed.text
    for _ in range(2):
        moved = requests.get(url, timeout=10, allow_redirects=False)
        assert moved.status_code == 301
        assert moved.headers["Location"] == target
        assert "<Code>PermanentRedirect</Code>" in moved.text
    assert requests.get(url, timeout=10, allow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": 200}, "redirect status must be one of"),
        ({"location": "https://[::1/x.csv"}, "redirect location must be a URL"),
        ({"location": "https://example.com:99999/x"}, "redirect location must be a URL"),
    ],
)
def test_redirect_refuses_a_status_or_location_it_cannot_send(
    api: ApiClient, params: dict[str, object], message: str
) -> None:
    refused = api.control("POST", "/faults", json={"kind": "redirect", **params})
    assert refused.status_code == 400
    assert message in refused.json()["error"]
    assert api.control("GET", "/faults").json() == []
