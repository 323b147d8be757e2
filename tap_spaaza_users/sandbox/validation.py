"""Validation of a ``POST /tasks`` body: what the Services API would reject with 400/403."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import parse_utc
from tap_spaaza_users.sandbox.errors import reject
from tap_spaaza_users.sandbox.filters import Segment, parse_segment

if TYPE_CHECKING:
    from datetime import datetime

KNOWN_KEYS = frozenset({"chain", "desc", "target", "trigger"})


@dataclass(frozen=True)
class SavedSegment:
    """A segment saved in Console, usable as ``trigger.segment_id``."""

    id: int
    name: str
    definition: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """Return the saved segment as JSON."""
        return {"id": self.id, "name": self.name, "segment": self.definition}


@dataclass(frozen=True)
class TaskRequest:
    """A validated task creation request."""

    chain: int
    desc: str
    target: dict[str, Any]
    trigger: dict[str, Any]
    once: datetime
    segment: Segment | None
    extra: dict[str, Any]


def parse_task_body(body: object, chain_id: int, saved: dict[int, SavedSegment]) -> TaskRequest:
    """Validate a ``POST /tasks`` body sent with a token of ``chain_id``.

    Raises:
        ApiError: 400 naming what is wrong, 403 for another chain.
    """
    if not isinstance(body, dict):
        reject("invalid_json", "the body must be a JSON object")
    chain = body.get("chain")
    if chain is None:
        reject("missing_chain", "the body has no chain")
    if not isinstance(chain, int) or isinstance(chain, bool):
        reject("invalid_chain", "chain must be an integer")
    if chain != chain_id:
        reject("forbidden", "the token is not scoped to this chain", 403)
    target = _parse_target(body.get("target"))
    trigger = body.get("trigger")
    if not isinstance(trigger, dict):
        reject("missing_trigger", "the body has no trigger object")
    once = _parse_once(trigger.get("once"))
    segment = _parse_trigger_segment(trigger, chain_id, saved)
    desc = body.get("desc", "")
    extra = {key: value for key, value in body.items() if key not in KNOWN_KEYS}
    return TaskRequest(chain, str(desc), target, trigger, once, segment, extra)


def _parse_target(target: object) -> dict[str, Any]:
    """Validate ``target``: an export of the users index as CSV."""
    if not isinstance(target, dict):
        reject("missing_target", "the body has no target object")
    if target.get("action") != "export":
        reject("unknown_action", f"unknown target.action {target.get('action')!r}")
    if target.get("export_index") != "users":
        index = target.get("export_index")
        reject("unknown_index", f"unknown target.export_index {index!r}")
    if target.get("export_format") != "csv":
        export_format = target.get("export_format")
        reject("unknown_export_format", f"unknown export_format {export_format!r}")
    return target


def _parse_once(once: object) -> datetime:
    """Validate ``trigger.once``: an ISO 8601 date-time."""
    if once in (None, ""):
        reject("missing_trigger_once", "trigger.once is required")
    try:
        return parse_utc(str(once))
    except (ValueError, OverflowError):  # overflow: a year-1 or year-9999 moment off UTC
        msg = f"trigger.once {once!r} is not a date-time in years 1 to 9999 UTC"
        reject("invalid_date", msg)


def _parse_trigger_segment(
    trigger: dict[str, Any], chain_id: int, saved: dict[int, SavedSegment]
) -> Segment | None:
    """Resolve ``trigger.segment`` or ``trigger.segment_id`` (not both)."""
    has_inline, has_saved = "segment" in trigger, "segment_id" in trigger
    if has_inline and has_saved:
        reject("segment_conflict", "send trigger.segment or trigger.segment_id, not both")
    if has_inline:
        return parse_segment(trigger["segment"], chain_id)
    if not has_saved:
        return None
    try:
        segment_id = int(trigger["segment_id"])
    except (TypeError, ValueError):
        reject("invalid_segment_id", "trigger.segment_id must be an id")
    if segment_id not in saved:
        reject("unknown_segment", f"no saved segment {segment_id}")
    definition = {**saved[segment_id].definition, "chain_id": chain_id}
    return parse_segment(definition, chain_id)


def default_saved_segments() -> dict[int, SavedSegment]:
    """Return the segments the sandbox starts with."""
    high_value = {
        "entity": "people",
        "index": "users",
        "join": "all",
        "rules": [
            {"field_name": "overall", "field_type": "number", "operator": "is_between_number",
             "min": 4, "max": 5},
        ],
    }  # fmt: skip
    newsletter = {
        "entity": "people",
        "index": "users",
        "join": "all",
        "rules": [
            {"field_name": "mailing_list_subscribed", "field_type": "boolean", "operator": "is",
             "value": True},
        ],
    }  # fmt: skip
    return {
        101: SavedSegment(101, "High-value customers", high_value),
        102: SavedSegment(102, "Newsletter subscribers", newsletter),
    }
