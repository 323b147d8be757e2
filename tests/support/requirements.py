"""What a test needs from the machine: required under CI, skipped (with the fix) elsewhere."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str, fix: str) -> None:  # noqa: FBT001
    """Fail under CI, skip on a developer's machine, when a test's dependency is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(f"{reason}: {fix}")
