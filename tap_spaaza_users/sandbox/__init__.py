"""A local Spaaza Services API and storage endpoint over synthetic users, for tests and demos."""

from __future__ import annotations

from tap_spaaza_users.sandbox.core import Sandbox

__all__ = ["Sandbox"]
