"""Fixtures of the sandbox's own tests: the sandbox plugin, API clients, a small sandbox."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast

import pytest
from sandbox_client import ApiClient

if TYPE_CHECKING:
    from sandbox_client import SandboxFactory

    from tap_spaaza_users.sandbox import Sandbox

PLUGIN = "tap_spaaza_users.sandbox.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    """Load the sandbox fixtures (a no-op when tests/conftest.py already registered them)."""
    config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def api(sandbox: Sandbox) -> ApiClient:
    """A client of the running sandbox's API, with its demo token."""
    return ApiClient(sandbox)


@pytest.fixture
def small_sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A 200-user sandbox with a fixed start clock."""
    return cast(
        "Sandbox",
        sandbox_factory(users=200, seed=7, now=datetime(2026, 5, 26, 12, tzinfo=timezone.utc)),
    )


@pytest.fixture
def small_api(small_sandbox: Sandbox) -> ApiClient:
    """A client of the small sandbox."""
    return ApiClient(small_sandbox)
