"""The `spaaza-sandbox` command: says how to install the sandbox when its extra is missing.

It lives outside the ``sandbox`` package because importing that package needs werkzeug,
which only the ``[sandbox]`` extra installs.
"""

from __future__ import annotations

import sys

INSTALL_HINT = (
    "spaaza-sandbox needs the sandbox extra (werkzeug): pip install 'tap-spaaza-users[sandbox]'"
)


def main() -> int:
    """Run the sandbox's command line, or explain in one line how to install it.

    Returns:
        The exit status: the sandbox's own, or 1 when the extra is not installed.
    """
    try:
        from tap_spaaza_users.sandbox.cli import main as sandbox_main  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "werkzeug":
            raise
        print(INSTALL_HINT, file=sys.stderr)  # noqa: T201
        return 1
    return sandbox_main()
