"""The users stream's state keys: every key it reads and writes, named once.

The SDK keeps the bookmark (``replication_key_value``) and its not-yet-promoted progress
(``progress_markers``). Beside them the stream keeps:

- ``in_flight_task``: the export task a sync named for a window (its id and task key) and
  has not finished delivering, so a rerun reuses it instead of exporting again;
- ``delivered_before``: every user created before this moment has been delivered (the end
  of the last closed backfill window);
- ``full_refresh`` / ``last_full_refresh`` / ``last_full_refresh_users``: the periodic full
  refresh in progress (its table version, start and users emitted so far), when the last one
  was delivered whole, and how many users it held (a refresh with markedly fewer is refused);
- ``delivered_tasks``: the latest export tasks whose files were delivered, never adopted again
  and deleted by the next sync;
- ``chain_id`` / ``selection``: what the state belongs to (the chain, and a fingerprint of the
  saved segment or rules and join), checked before a sync sends any request.

The rules that move them are beside this module: ``bookmark``, ``tasks`` and ``refresh``;
``check`` checks an input state.
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]

#: The SDK's keys for the bookmark, its replication key and its not-yet-promoted progress.
BOOKMARK = "replication_key_value"
REPLICATION_KEY = "replication_key"
PROGRESS_MARKERS = "progress_markers"
#: The SDK's note of the bookmark a sync started from.
STARTING_VALUE = "starting_replication_value"
#: The export task this sync created and has not finished delivering.
IN_FLIGHT = "in_flight_task"
#: The in-flight task's key: what it asks for (chain, window, request; ``tasks.tags.task_key``).
TASK_KEY = "key"
#: The in-flight task's note that it exports a full refresh (and of which version).
IN_FLIGHT_VERSION = "full_refresh_version"
#: Every user created before this moment has been delivered (end of a closed backfill window).
DELIVERED_BEFORE = "delivered_before"
#: When the last full export that was delivered whole was asked for (ISO 8601, UTC).
LAST_FULL_REFRESH = "last_full_refresh"
#: The full refresh in progress: its table version and start, until it is delivered whole.
FULL_REFRESH = "full_refresh"
#: How many users the last full refresh that was delivered whole (and activated) held.
LAST_FULL_REFRESH_USERS = "last_full_refresh_users"
#: The full refresh entry's count of users emitted so far (by this run and earlier ones).
REFRESH_USERS = "users"
#: The latest export tasks whose files were delivered (ids, oldest first).
DELIVERED_TASKS = "delivered_tasks"
#: The latest tasks given up because their file proved unobtainable (never adopted again).
GIVEN_UP_TASKS = "given_up_tasks"
#: The chain the state belongs to.
CHAIN_ID = "chain_id"
#: A fingerprint of the users the state's bookmark is about (saved segment, rules and join).
SELECTION = "selection"


def is_int(value: object) -> bool:
    """Whether a JSON value is an integer (booleans are not)."""
    return isinstance(value, int) and not isinstance(value, bool)
