"""The tag at the end of every export task's ``desc``: what the task exports, readable by any run.

``[tap-spaaza-users:<task key>:<selection>:<window end>]``: the task key (chain, window and
request) lets a run adopt the task instead of exporting the same window again; the selection
and the window's end let the next sync delete every delivered task of the selection from its
tag alone. A tag of the earlier form, the task key only, is still recognised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The name in the tag: only tasks carrying it are ever adopted or deleted by the sweep.
TAG_NAME = "tap-spaaza-users"
_TAG = re.compile(
    r"\[" + re.escape(TAG_NAME) + r":([0-9a-f]{16})(?::([0-9a-f]{16}):(\d{8}T\d{6}Z|open))?\]"
)
#: How a window's end is written in a tag (``open``: a window up to the export's run).
_TAG_END = "%Y%m%dT%H%M%SZ"


def task_key(chain_id: int, window: Mapping[str, str | None], body: dict[str, Any]) -> str:
    """The task's identity: what it asks for (chain, window, request), whenever it is sent.

    The same key tags the task's ``desc`` and names it in the state's in-flight entry. The
    trigger's ``once`` and the free-text ``desc`` do not count; the segment (saved or inline,
    with its join) and the export target do, so a task left by a run with other segment
    settings is never reused.

    Args:
        chain_id: The chain.
        window: The window the task exports, as its key gives it (``Window.key``).
        body: The ``POST /tasks`` body.

    Returns:
        16 hex digits.
    """
    trigger = {name: value for name, value in body.get("trigger", {}).items() if name != "once"}
    request = json.dumps({"target": body.get("target"), "trigger": trigger}, sort_keys=True)
    request_key = hashlib.sha256(request.encode()).hexdigest()[:16]
    asked = {"chain": chain_id, **window, "request": request_key}
    text = json.dumps(asked, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tag(desc: str, key: str, selection: str | None = None, end: dt.datetime | None = None) -> str:
    """A readable task description with the machine-readable tag at its end.

    The tag holds the task key, and, when the selection is known, the selection's key
    (``state.bookmark.selection_key``) and the window's end: the sweep deletes a delivered
    task of the selection from them alone, without a list of ids in the state.
    """
    if selection is None:
        return f"{desc} [{TAG_NAME}:{key}]"
    ends = end.astimezone(dt.timezone.utc).strftime(_TAG_END) if end is not None else "open"
    return f"{desc} [{TAG_NAME}:{key}:{selection}:{ends}]"


def tagged_window_end(task: object) -> tuple[str, dt.datetime | None] | None:
    """The selection key and window end a listed task's tag names (end None: open), or None."""
    desc = task.get("desc") if isinstance(task, dict) else None
    found = _TAG.search(desc) if isinstance(desc, str) else None
    if found is None or found.group(2) is None:
        return None
    end = found.group(3)
    if end == "open":
        return found.group(2), None
    moment = dt.datetime.strptime(end, _TAG_END).replace(tzinfo=dt.timezone.utc)
    return found.group(2), moment


def tag_of(task: object) -> str | None:
    """The task key in a listed task's tag, or None for a task the tap did not create."""
    desc = task.get("desc") if isinstance(task, dict) else None
    found = _TAG.search(desc) if isinstance(desc, str) else None
    return found.group(1) if found else None


def ours(task: object, chain_id: int) -> bool:
    """Whether a listed task carries the tag, an id, and (if it says) the configured chain."""
    if not isinstance(task, dict) or not tag_of(task):
        return False
    task_id, chain = task.get("id"), task.get("chain")
    return isinstance(task_id, int) and (not isinstance(chain, int) or chain == chain_id)
