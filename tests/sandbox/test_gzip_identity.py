"""A gzip export holds no timestamp: the same export gives the same bytes and ETag every run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from sandbox_client import ApiClient

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory

NOW = datetime(2026, 5, 26, 12, tzinfo=timezone.utc)


def _gzip_export(factory: SandboxFactory, damaged: bool) -> tuple[bytes, str]:  # noqa: FBT001
    """Export the same 50 users gzipped (and damaged); return the bytes and the ETag."""
    api = ApiClient(factory(users=50, seed=3, now=NOW))
    api.sb.inject("gzip", mode="raw")
    if damaged:
        api.sb.inject("stray_quote", rows=[2])
    response = api.export()
    content: bytes = response.content
    assert content[:2] == b"\x1f\x8b"
    return content, str(response.headers["ETag"])


@pytest.mark.parametrize("damaged", [False, True], ids=["written", "damaged"])
def test_gzip_export_is_byte_identical_across_runs(
    sandbox_factory: SandboxFactory,
    damaged: bool,  # noqa: FBT001
) -> None:
    content, etag = _gzip_export(sandbox_factory, damaged)
    assert content[4:8] == b"\0\0\0\0"  # the header's MTIME field: no time stamped
    assert _gzip_export(sandbox_factory, damaged) == (content, etag)
