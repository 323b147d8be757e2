"""Pytest fixtures: ``sandbox`` (a small running sandbox) and ``sandbox_factory``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tap_spaaza_users.sandbox.core import Sandbox

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with any ``Sandbox`` arguments; all are stopped after the test."""
    started: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:  # noqa: ANN401 - Sandbox's keywords
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A running sandbox: 1,000 users, seed 1, tasks that finish at once."""
    return sandbox_factory(users=1000, seed=1)
