"""Shared fixtures: the sandbox plugin, fast tap settings, and an in-process sync helper."""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
from tap_cli import FAST_SETTINGS, captured_stdout

from tap_spaaza_users.tap import TapSpaazaUsers

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

pytest_plugins = ["tap_spaaza_users.sandbox.pytest_plugin"]


@dataclass
class SyncOutput:
    """The Singer messages of one sync, sorted by type."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """The RECORD messages' records."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """The SCHEMA messages."""
        return [m for m in self.messages if m["type"] == "SCHEMA"]

    @property
    def states(self) -> list[dict[str, Any]]:
        """The STATE messages' values."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE value (what an orchestrator would keep)."""
        return self.states[-1]

    @property
    def bookmark(self) -> str | None:
        """The users bookmark of the final state."""
        return cast(
            "str | None", self.final_state["bookmarks"]["users"].get("replication_key_value")
        )

    @property
    def ids(self) -> set[int]:
        """The ids of the emitted users."""
        return {record["id"] for record in self.records}


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


def parse_messages(text: str) -> list[dict[str, Any]]:
    """Parse Singer messages, numbers with a fraction as Decimal (to compare every digit).

    Args:
        text: The tap's standard output.

    Returns:
        The messages.
    """
    return [json.loads(line, parse_float=decimal.Decimal) for line in text.splitlines() if line]


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
