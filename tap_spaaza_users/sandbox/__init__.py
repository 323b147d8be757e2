"""A local Spaaza Services API and storage endpoint over synthetic users, for tests and demos.

Importing this package needs nothing beyond the tap's own dependencies: ``Sandbox`` (and
with it werkzeug, which the ``[sandbox]`` extra installs) is imported on first use, so
that ``python -m tap_spaaza_users.sandbox`` and ``spaaza-sandbox`` can say in one line
how to install the extra instead of ending in a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_spaaza_users.sandbox.core import Sandbox

__all__ = ["INSTALL_HINT", "Sandbox", "main"]

#: What the sandbox's commands print, alone on stderr, when werkzeug is not installed.
INSTALL_HINT = (
    "The Spaaza sandbox needs werkzeug, which is not installed; install the sandbox extra: "
    "pip install 'tap-spaaza-users[sandbox]'"
)
#: The exit status of a command that cannot run without the extra.
MISSING_EXTRA_STATUS = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox's command line, or say in one line how to install its extra.

    Args:
        argv: The arguments (default: the process's).

    Returns:
        The exit status: the command's own, or 2 when werkzeug is not installed.
    """
    try:
        from tap_spaaza_users.sandbox.cli import main as cli_main  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "werkzeug":
            raise
        print(INSTALL_HINT, file=sys.stderr)  # noqa: T201
        return MISSING_EXTRA_STATUS
    return cli_main(argv)


def __getattr__(name: str) -> object:
    """Import ``Sandbox`` on first use (it needs werkzeug)."""
    if name == "Sandbox":
        from tap_spaaza_users.sandbox.core import Sandbox  # noqa: PLC0415

        return Sandbox
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
