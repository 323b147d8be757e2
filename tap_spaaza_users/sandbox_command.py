"""The `spaaza-sandbox` command: says how to install the sandbox when its extra is missing.

The entry point of the distribution. The sandbox package imports werkzeug only when it is
used, so its ``main`` (also behind ``python -m tap_spaaza_users.sandbox``) can say in one
line how to install the ``[sandbox]`` extra instead of ending in a traceback.
"""

from __future__ import annotations

from tap_spaaza_users.sandbox import INSTALL_HINT, main

__all__ = ["INSTALL_HINT", "main"]
