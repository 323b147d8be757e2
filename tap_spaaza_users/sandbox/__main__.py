"""``python -m tap_spaaza_users.sandbox``: run the sandbox from the command line."""

from __future__ import annotations

import sys

from tap_spaaza_users.sandbox import main

sys.exit(main())
