"""The tap's segment checks and builders, over the contract's segment vocabulary."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

from tap_spaaza_users.contract import (
    FIELD_TYPES,
    JOINS,
    OPERATORS,
    TIME_FACTORS,
    USER_COLUMNS,
    parse_utc,
)
from tap_spaaza_users.errors import SpaazaConfigError, invalid_setting

#: An example of the ISO 8601 form rules take, quoted in messages.
DATE_EXAMPLE = "2024-01-31T00:00:00Z"
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
)
#: What each operand must hold, for messages (``value`` depends on the field type).
_OPERAND_HINTS = {
    "start_date": f"an ISO 8601 date-time, e.g. {DATE_EXAMPLE}",
    "end_date": f"an ISO 8601 date-time, e.g. {DATE_EXAMPLE}",
    "min": "a number",
    "max": "a number",
    "time_factor": "one of " + ", ".join(sorted(TIME_FACTORS)),
    "time_amount": "a whole number above 0, e.g. 30",
}
_VALUE_HINTS = {
    "date": f"an ISO 8601 date-time, e.g. {DATE_EXAMPLE}",
    "number": "a number",
    "boolean": "true or false",
    "keyword": "the text to match",
    "text": "the text to match",
}
LOGGER = logging.getLogger("tap-spaaza-users")


def format_rule_date(moment: dt.datetime) -> str:
    """Format a moment the way rules and triggers carry it: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    Args:
        moment: An aware datetime.

    Returns:
        The UTC moment, whole seconds, with a ``Z`` suffix.
    """
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_after_rule(after: dt.datetime) -> dict[str, Any]:
    """Build the rule selecting users whose ``created_date`` is strictly after a moment.

    Args:
        after: The exclusive lower bound (``is_after_date`` is strict on the server).

    Returns:
        The rule, ready for a segment's ``rules`` list.
    """
    return {
        "field_name": "created_date",
        "field_type": "date",
        "operator": "is_after_date",
        "start_date": format_rule_date(after),
    }


def users_segment(
    chain_id: int, rules: Sequence[Mapping[str, Any]], join: str = "all"
) -> dict[str, Any]:
    """Build an inline ``trigger.segment`` over the users index.

    Args:
        chain_id: The chain the segment belongs to.
        rules: Rules, each already checked with :func:`check_rule`.
        join: ``all`` (AND) or ``any`` (OR).

    Returns:
        The segment object.
    """
    return {
        "entity": "people",
        "index": "users",
        "join": join,
        "chain_id": chain_id,
        "rules": [dict(rule) for rule in rules],
    }


@dataclass(frozen=True)
class SegmentChoice:
    """Which users the settings ask for: a saved segment, inline rules, or everyone."""

    segment_id: int | None = None
    rules: tuple[Mapping[str, Any], ...] = ()
    join: str = "all"

    @property
    def server_side_window(self) -> bool:
        """Whether the ``created_date`` window can be ANDed into the task's segment.

        Not with a saved segment (a task takes ``segment_id`` or ``segment``, not both), nor
        with rules joined by ``any`` (the window would be ORed); the bookmark is then
        applied on our side, after the download.
        """
        return self.segment_id is None and (self.join == "all" or not self.rules)

    def describe(self) -> str:
        """Name the selection for log lines and the task description.

        Returns:
            E.g. ``saved segment 101`` or ``2 segment rules (join any)``.
        """
        if self.segment_id is not None:
            return f"saved segment {self.segment_id}"
        if self.rules:
            return f"{len(self.rules)} segment rules (join {self.join})"
        return "all users"


def check_segment_settings(config: Mapping[str, Any]) -> None:
    """Check ``segment_id``, ``segment_join`` and every rule, before any task is created.

    Args:
        config: The tap's settings.

    Raises:
        SpaazaConfigError: Naming the setting (and a rule's position and field) and the fix.
    """
    rules = config.get("segment_rules")
    rules = [] if rules is None else rules
    if not isinstance(rules, list):
        invalid_setting("segment_rules", "must be a list of rule objects")
    join = config.get("segment_join")
    if join is not None and (not isinstance(join, str) or join not in JOINS):
        invalid_setting(
            "segment_join", f"must be 'all' (every rule) or 'any' (one rule), not {join!r}"
        )
    segment_id = config.get("segment_id")
    if segment_id is not None:
        if isinstance(segment_id, bool) or not isinstance(segment_id, int) or segment_id <= 0:
            invalid_setting(
                "segment_id",
                f"must be the positive number in the segment's Console URL, not {segment_id!r}",
            )
        if rules:
            invalid_setting(
                "segment_id",
                "and segment_rules cannot be used together: a Spaaza export task takes a "
                "saved segment or inline rules, not both. Add the rules to the saved segment "
                "in Spaaza Console, or leave segment_id out",
            )
    for index, rule in enumerate(rules):
        check_rule(rule, f"segment_rules[{index}]")


def check_rule(rule: object, where: str) -> None:
    """Check one rule against the vocabulary, before it is ever sent.

    Unknown keys are kept and sent as they are (``nested`` and ``nesting_path`` included);
    a ``field_name`` that is not a column of the users export only draws a warning.

    Args:
        rule: The rule as read from the settings.
        where: How to name the rule in a message, e.g. ``segment_rules[0]``.

    Raises:
        SpaazaConfigError: When the rule is not an object, names an unknown field type or
            operator, an operator that does not fit the field type, or lacks (or malforms)
            an operand its operator needs.
    """
    if not isinstance(rule, Mapping):
        _bad(where, None, f"must be an object with field_name, field_type and operator, "
                          f"not {type(rule).__name__}")  # fmt: skip
    field_name = rule.get("field_name")
    if not isinstance(field_name, str) or not field_name.strip():
        _bad(where, None, f"needs field_name, the user field to filter on (e.g. 'created_date'); "
                          f"set {where}.field_name")  # fmt: skip
    field_type = rule.get("field_type")
    if not isinstance(field_type, str) or field_type not in FIELD_TYPES:
        _bad(where, field_name, f"field_type {field_type!r} is unknown; set {where}.field_type "
                                f"to one of {_listing(FIELD_TYPES)}")  # fmt: skip
    operator = rule.get("operator")
    if not isinstance(operator, str) or operator not in OPERATORS:
        _bad(where, field_name, f"operator {operator!r} is unknown; set {where}.operator "
                                f"to one of {_listing(OPERATORS)}")  # fmt: skip
    needed, accepted_types = OPERATORS[operator]
    if field_type not in accepted_types:
        fitting = sorted(name for name, spec in OPERATORS.items() if field_type in spec[1])
        _bad(where, field_name, f"operator '{operator}' does not apply to field_type "
                                f"'{field_type}' (only to {_listing(accepted_types)}); set "
                                f"{where}.operator to one of {', '.join(fitting)}, or correct "
                                f"field_type")  # fmt: skip
    missing = [name for name in needed if rule.get(name) in (None, "")]
    if missing:
        wanted = " and ".join(f"{name} ({_hint(name, field_type)})" for name in missing)
        _bad(where, field_name, f"operator '{operator}' needs {wanted}")
    for name in needed:
        _check_operand(rule, name, field_type, where, field_name)
    _check_order(rule, operator, where, field_name)
    column = field_name.replace(".", "_")
    if column not in USER_COLUMNS and not rule.get("nested"):
        LOGGER.warning(
            "%s (field '%s'): not a column of the users export; Spaaza may reject the rule",
            where,
            field_name,
        )


def _check_operand(
    rule: Mapping[str, Any], name: str, field_type: str, where: str, field_name: str
) -> None:
    """Check that one operand is well formed for its role and the field type."""
    value = rule[name]
    kind = field_type if name == "value" else name
    if kind in ("start_date", "end_date", "date") and _parse_date(value) is None:
        problem = f"{name} {value!r} is not an ISO 8601 date"
    elif kind in ("min", "max", "number") and _number(value) is None:
        problem = f"{name} {value!r} is not a number"
    elif kind == "boolean" and not isinstance(value, bool):
        problem = f"{name} {value!r} is not true or false"
    elif kind == "time_factor" and (not isinstance(value, str) or value not in TIME_FACTORS):
        problem = f"time_factor {value!r} is unknown"
    elif kind == "time_amount" and (
        isinstance(value, bool) or not isinstance(value, int) or value <= 0
    ):
        problem = f"time_amount {value!r} is not a whole number above 0"
    else:
        return
    _bad(where, field_name, f"{problem}; set {where}.{name} to {_hint(name, field_type)}")


def _check_order(rule: Mapping[str, Any], operator: str, where: str, field_name: str) -> None:
    """Check that a range's lower end is not above its upper end."""
    if operator == "is_between_date":
        start, end = _parse_date(rule["start_date"]), _parse_date(rule["end_date"])
        reversed_range = start is not None and end is not None and start > end
        names = "start_date", "end_date"
    elif operator == "is_between_number":
        low, high = _number(rule["min"]), _number(rule["max"])
        reversed_range = low is not None and high is not None and low > high
        names = "min", "max"
    else:
        return
    if reversed_range:
        _bad(where, field_name, f"{names[0]} is above {names[1]}; swap them (the range "
                                f"includes both ends)")  # fmt: skip


def _parse_date(value: object) -> dt.datetime | None:
    """Read an ISO 8601 date or date-time (naive means UTC); None when it is not one.

    Rules take only the calendar form ``YYYY-MM-DD[THH:MM[:SS[.f]]][Z|±HH:MM]``, narrower than
    what :func:`parse_utc` reads.
    """
    if not isinstance(value, str) or not _ISO_8601.fullmatch(value.strip()):
        return None
    try:
        return parse_utc(value)
    except (ValueError, OverflowError):  # OverflowError: beyond year 1 to 9999 once in UTC
        return None


def _number(value: object) -> Decimal | None:
    """Read a JSON number (not a boolean, not text); None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = Decimal(str(value))
    return number if number.is_finite() else None


def _hint(name: str, field_type: str) -> str:
    """What an operand must hold, for messages."""
    return _VALUE_HINTS.get(field_type, "a value") if name == "value" else _OPERAND_HINTS[name]


def _listing(names: Sequence[str] | frozenset[str] | Mapping[str, Any]) -> str:
    """Sorted, comma-separated names."""
    return ", ".join(sorted(names))


def _bad(where: str, field_name: str | None, problem: str) -> NoReturn:
    """Raise the settings error for one rule, naming its position, its field and the fix.

    Args:
        where: The rule, e.g. ``segment_rules[2]``.
        field_name: The rule's field, if it has one.
        problem: What is wrong and how to fix it.

    Raises:
        SpaazaConfigError: Always.
    """
    field = f"field '{field_name}'" if field_name else "no field_name"
    msg = f"{where} ({field}): {problem}. Fix the rule in the tap settings."
    raise SpaazaConfigError(msg)
