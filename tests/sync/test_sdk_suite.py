"""The Singer SDK's standard tap tests, run against a sandbox started for this module."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_spaaza_users.sandbox import Sandbox
from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Iterator

# The SDK builds the test class at import time from a ready config, so the sandbox starts
# here rather than in a fixture. parse_env_config=False: a developer's .env must never point
# these tests at a real account.
SANDBOX = Sandbox(users=60, seed=11).start()
atexit.register(SANDBOX.stop)

TestTapSpaazaUsers = get_tap_test_class(
    tap_class=TapSpaazaUsers,
    config=SANDBOX.tap_config(max_retries=2, retry_initial_wait_seconds=0.01,
                              retry_max_wait_seconds=0.05),
    parse_env_config=False,
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _stop_sandbox() -> Iterator[None]:
    """Stop the module's sandbox once its tests are done."""
    yield
    SANDBOX.stop()
