"""tap-spaaza-users: a Singer tap for Spaaza user exports, built with the Meltano Singer SDK."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    #: The installed distribution's version; pyproject.toml is its one source.
    __version__ = version("tap-spaaza-users")
except PackageNotFoundError:  # pragma: no cover - imported from a checkout that is not installed
    __version__ = "0+unknown"
