"""Shared fixtures: the sandbox plugin, fast tap settings, an in-process sync, tap processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.tap_cli import (
    DEADLINE_SECONDS,
    FAST_SETTINGS,
    SyncOutput,
    TapProcess,
    captured_stdout,
    parse_messages,
)

from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tap_spaaza_users.sandbox import Sandbox

pytest_plugins = ["tap_spaaza_users.sandbox.pytest_plugin"]


def run_sync(config: dict[str, Any], state: dict[str, Any] | None = None) -> SyncOutput:
    """Run a full sync in-process and collect the messages it writes.

    Args:
        config: Tap settings.
        state: Input state.

    Returns:
        The messages; ``error`` holds the exception if the sync failed.
    """
    output = SyncOutput()
    tap = TapSpaazaUsers(config=config, state=state, parse_env_config=False)
    with captured_stdout() as written:
        try:
            tap.sync_all()
        except Exception as exc:  # noqa: BLE001
            output.error = exc
        output.messages = parse_messages(written())
    return output


@pytest.fixture
def sync() -> Callable[..., SyncOutput]:
    """The in-process sync helper, :func:`run_sync`."""
    return run_sync


@pytest.fixture
def fast_settings() -> dict[str, Any]:
    """Settings that keep backoff and timeouts tiny."""
    return dict(FAST_SETTINGS)


@pytest.fixture
def small_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A running sandbox with 120 users."""
    return sandbox_factory(users=120, seed=7)


@pytest.fixture
def fast_config(small_sandbox: Sandbox) -> dict[str, Any]:
    """Tap settings for the small sandbox with tiny backoff."""
    return small_sandbox.tap_config(**FAST_SETTINGS)


@pytest.fixture
def start_tap(tmp_path: Path) -> Iterator[Callable[..., TapProcess]]:
    """Start tap processes that are all stopped after the test."""
    started: list[TapProcess] = []

    def start(config: dict[str, Any], state: dict[str, Any] | None = None) -> TapProcess:
        started.append(TapProcess(tmp_path, config, state))
        return started[-1]

    yield start
    for tap in started:
        if tap.process.poll() is None:
            tap.process.kill()
            tap.process.communicate(timeout=DEADLINE_SECONDS)
        elif tap.process.stdout is not None:
            tap.process.stdout.close()  # a test that failed before reading to the end
