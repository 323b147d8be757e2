"""Where the tap reaches into the Singer SDK's private hooks; see README.md in this folder."""

from __future__ import annotations

from tap_spaaza_users.sdk_hooks.stream import HookedStream
from tap_spaaza_users.sdk_hooks.tap import HookedTap

__all__ = ["HookedStream", "HookedTap"]
