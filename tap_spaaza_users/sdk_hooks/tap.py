"""The tap's side of the SDK's private hooks: settings checked before the SDK's own validation."""

from __future__ import annotations

import functools
import signal
import sys
from typing import TYPE_CHECKING, Any

from singer_sdk import Tap

from tap_spaaza_users.sdk_hooks.output import OutputFailedError, OutputStalledError

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

    def before_sync(self) -> None:
        """Work a sync does before its first message (nothing here; subclasses say what)."""

    @override
    def _reset_state_progress_markers(self) -> None:
        """The first step of the SDK's ``sync_all`` (which is final): ``before_sync`` first."""
        self.before_sync()
        super()._reset_state_progress_markers()

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
        export task in flight, so the next run resumes with it. A block of records being
        written is finished first, while its reader takes it (see sdk_hooks/writer.py).
        While BATCH files are being written nothing is written: the state may already hold a
        bookmark for records in a file no BATCH message has announced, and the last STATE
        written (after the files it covers) is the one to resume from.
        """
        del frame
        stop = functools.partial(self._stop, signum)
        on_stop_signal = getattr(self.message_writer, "on_stop_signal", None)
        if on_stop_signal is None:
            stop()
        else:
            on_stop_signal(signum, stop)

    def _stop(self, signum: int) -> None:
        """Write the state as it is (unless the output is given up), then exit 128 + signal."""
        written = False
        streams = self._streams or {}  # as loaded: a signal handler loads nothing
        batching = any(getattr(stream, "before_state", None) for stream in streams.values())
        try:
            if not batching and not getattr(self.message_writer, "abandoned", False):
                self._state_writer.write_state(self.state)
                written = True
        except (OutputStalledError, OutputFailedError):
            pass
        finally:
            if written:
                why = "the state written so far lets the next run resume"
            elif batching:
                why = (
                    "BATCH files were being written, so the last STATE written (after the "
                    "files it covers) stands and the next run resumes from it"
                )
            else:
                why = (
                    "the output was not taking messages, so the last STATE written stands "
                    "and the next run resumes from it"
                )
            self.logger.error(
                "Stopped by %s: %s; exiting with status %d",
                signal.Signals(signum).name,
                why,
                128 + signum,
            )
            # Past this point a second signal would kill the exiting interpreter (it restores
            # the default handlers), ending with the signal instead of 128 + the signal.
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, signal.SIG_IGN)
            sys.exit(128 + signum)
