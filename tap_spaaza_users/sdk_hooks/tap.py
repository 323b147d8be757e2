"""The tap's side of the SDK's private hooks: settings checked before the SDK's own validation."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from singer_sdk import Tap

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Mapping


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
