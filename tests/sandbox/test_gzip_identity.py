"""A gzip export holds no timestamp: the same export gives the same bytes and ETag every run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from sandbox_client import ApiClient

if TYPE_CHECKING:
    import requests
    from sandbox_client import SandboxFactory

NOW = datetime(2026, 5, 26, 12, tzinfo=timezone.utc)


def _gzip_export(factory: SandboxFactory, damaged: bool) -> requests.Response:  # noqa: FBT001
    api = ApiClient(factory(users=50, seed=3, now=NOW))
    api.sb.inject("gzip", mode="raw")
    if damaged:
        api.sb.inject("stray_quote", rows=[2])
    response = api.export()
    assert response.content[:2] == b"\x1f\x8b"
    return response


@pytest.mark.parametrize("damaged", [False, True], ids=["written", "damaged"])
def test_gzip_export_is_byte_identical_across_runs(
    sandbox_factory: SandboxFactory,
    damaged: bool,  # noqa: FBT001
) -> None:
    first = _gzip_export(sandbox_factory, damaged)
    assert first.content[4:8] == b"\0\0\0\0"  # the header's MTIME field: no time stamped
    second = _gzip_export(sandbox_factory, damaged)
    assert second.content == first.content
    assert second.headers["ETag"] == first.headers["ETag"]
