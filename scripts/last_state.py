"""Print the value of the last STATE message in a file of Singer messages: the next run's state.

Usage: ``python scripts/last_state.py first-run.jsonl > state.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def last_state(path: Path) -> object:
    """The value of the last STATE message in ``path``.

    Args:
        path: A file of Singer messages, one JSON object a line.

    Returns:
        That STATE message's value.

    Raises:
        SystemExit: When the file holds no STATE message.
    """
    value: object = None
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("{"):
                message = json.loads(line)
                if message.get("type") == "STATE":
                    value = message["value"]
    if value is None:
        msg = f"{path} holds no STATE message"
        raise SystemExit(msg)
    return value


if __name__ == "__main__":
    if len(sys.argv) != 2:  # noqa: PLR2004
        raise SystemExit(__doc__)
    print(json.dumps(last_state(Path(sys.argv[1]))))
