"""No task wedges a sync: storage refusing Range, a file gone for good, a corrupt file."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest
    from tap_cli import SyncOutput

    from tap_spaaza_users.sandbox import Sandbox


def storage_gets(sandbox: Sandbox) -> list[Any]:
    """The storage requests the sandbox answered, oldest first."""
    return [r for r in sandbox.requests if r.server == "storage"]


def test_storage_refusing_every_range_request_is_retried_once_without_range(
    small_sandbox: Sandbox,
    fast_config: dict[str, Any],
    sync: Callable[..., SyncOutput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    small_sandbox.inject("drop_connection", after_bytes=5000)
    small_sandbox.inject("range_forbidden", times=100)

    with caplog.at_level(logging.INFO):
        output = sync(fast_config)

    assert output.error is None
    assert output.ids == {int(user["id"]) for user in small_sandbox.users()}
    statuses = [(r.headers.get("Range"), r.status) for r in storage_gets(small_sandbox)]
    assert statuses == [(None, 200), ("bytes=5000-", 403), (None, 200)]
    assert caplog.text.count("storage refused a Range request (HTTP 403)") == 1
