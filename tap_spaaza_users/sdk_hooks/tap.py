"""The tap's side of the SDK's private hooks: settings checked before the SDK's own validation."""

from __future__ import annotations

import functools
import signal
import sys
from typing import TYPE_CHECKING, Any

from singer_sdk import Tap

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType


class HookedTap(Tap):
    """A Tap that normalises and checks its settings itself, with clear messages, first."""

    def normalize_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings to replace before validation (none here; subclasses say which)."""
        del config
        return {}

    def check_settings(self, config: Mapping[str, Any]) -> None:
        """Raise a clear error for an invalid setting (nothing here; subclasses check)."""

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Normalise and check the settings with clear messages, then against the JSON schema.

        Args:
            raise_errors: Raise on the first problem (False only for discovery).

        Returns:
            The schema validation errors (when not raising).
        """
        self._config.update(self.normalize_settings(self._config))
        if raise_errors:
            self.check_settings(self.config)
        return super()._validate_config(raise_errors=raise_errors)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Write the state as it is, then exit 128 + the signal (143 SIGTERM, 130 SIGINT).

        The SDK exits 0, so a scheduler would record an interrupted sync as a success. The
        state written holds no bookmark beyond the files delivered whole, and names the
        export task in flight, so the next run resumes with it.
        """
        del frame
        writer = self.message_writer
        if getattr(writer, "writing", False):  # a block is half written: finish it first
            writer.after_write = functools.partial(self._stop, signum)  # type: ignore[attr-defined]
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        """Write the state as it is, then exit 128 + the signal."""
        try:
            self._state_writer.write_state(self.state)
        finally:
            self.logger.error(
                "Stopped by %s: the state written so far lets the next run resume; exiting "
                "with status %d",
                signal.Signals(signum).name,
                128 + signum,
            )
            sys.exit(128 + signum)
