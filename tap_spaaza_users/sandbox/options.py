"""Sandbox-wide options: export duration, the letter case of state codes, storage bandwidth."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STATE_CODE_CASES = ("upper", "lower")


@dataclass(frozen=True)
class SandboxOptions:
    """Behaviour that holds for every request until changed (unlike one-shot faults)."""

    #: ``upper`` answers ``DONE``/``INPROGRESS`` as the contract spells them; ``lower`` answers
    #: ``done``/``inprogress`` (a variant the tap must tolerate)
    state_code_case: str = "upper"
    #: bytes per second shared by every storage body (a link of that speed); ``None``: no limit
    storage_bytes_per_second: float | None = None
    #: how long a task's export takes: a fixed part plus a part per 1,000 exported users
    task_base_seconds: float = 0.0
    task_seconds_per_1k_users: float = 0.0

    def __post_init__(self) -> None:
        """Validate the options.

        Raises:
            ValueError: an option has no such value.
        """
        if self.state_code_case not in STATE_CODE_CASES:
            msg = f"state_code_case must be one of {list(STATE_CODE_CASES)}"
            raise ValueError(msg)
        rate = self.storage_bytes_per_second
        if rate is not None and not float(rate) > 0:
            msg = "storage_bytes_per_second must be a positive number (or null for no limit)"
            raise ValueError(msg)
        if float(self.task_base_seconds) < 0 or float(self.task_seconds_per_1k_users) < 0:
            msg = "task_base_seconds and task_seconds_per_1k_users must be non-negative"
            raise ValueError(msg)

    def describe(self) -> dict[str, Any]:
        """Return the options as JSON."""
        return asdict(self)

    def updated(self, **changes: object) -> SandboxOptions:
        """Return these options with ``changes`` applied.

        Raises:
            ValueError: an unknown option, or a value it cannot take.
        """
        unknown = set(changes) - set(self.describe())
        if unknown:
            msg = f"unknown option(s) {sorted(unknown)}; known: {sorted(self.describe())}"
            raise ValueError(msg)
        return SandboxOptions(**{**self.describe(), **changes})
