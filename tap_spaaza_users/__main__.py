"""Run the tap as ``python -m tap_spaaza_users``."""

from __future__ import annotations

from tap_spaaza_users.tap import TapSpaazaUsers

TapSpaazaUsers.cli()
