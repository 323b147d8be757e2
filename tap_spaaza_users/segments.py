"""The segment filter vocabulary shared by tap and sandbox, and the tap's segment builders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from tap_spaaza_users.errors import SpaazaConfigError

#: Field types a rule may declare ([doc]: date, keyword; [assumed]: text, number, boolean).
FIELD_TYPES = frozenset({"date", "keyword", "text", "number", "boolean"})

#: Units of ``time_factor`` for the relative operators ([doc]: day; the rest [assumed]).
TIME_FACTORS = frozenset({"minute", "hour", "day", "week", "month", "year"})

#: operator -> (fields the rule must carry besides field_name/field_type/operator,
#:              field types the operator accepts)
OPERATORS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "is": (("value",), frozenset({"keyword", "text", "number", "boolean", "date"})),
    "is_not": (("value",), frozenset({"keyword", "text", "number", "boolean", "date"})),
    "contains": (("value",), frozenset({"keyword", "text"})),
    "does_not_contain": (("value",), frozenset({"keyword", "text"})),
    "is_date": (("value",), frozenset({"date"})),
    "is_after_date": (("start_date",), frozenset({"date"})),
    "is_before_date": (("end_date",), frozenset({"date"})),
    "is_between_date": (("start_date", "end_date"), frozenset({"date"})),
    "is_between_number": (("min", "max"), frozenset({"number"})),
    "relative_less_than": (("time_factor", "time_amount"), frozenset({"date"})),
    "relative_more_than": (("time_factor", "time_amount"), frozenset({"date"})),
}

JOINS = frozenset({"all", "any"})


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


def users_segment(chain_id: int, rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Build an inline ``trigger.segment`` over the users index that ANDs every rule.

    Args:
        chain_id: The chain the segment belongs to.
        rules: Rules, each already checked with :func:`check_rule`.

    Returns:
        The segment object.
    """
    return {
        "entity": "people",
        "index": "users",
        "join": "all",
        "chain_id": chain_id,
        "rules": [dict(rule) for rule in rules],
    }


def check_rule(rule: object, where: str) -> None:
    """Check one rule against the vocabulary, before it is ever sent.

    Args:
        rule: The rule as read from the settings.
        where: How to name the rule in a message, e.g. ``segment_rules[0]``.

    Raises:
        SpaazaConfigError: When the rule is not an object, or names an unknown operator,
            field type or time factor, or lacks a field its operator needs.
    """
    if not isinstance(rule, Mapping):
        _bad(where, "must be an object with field_name, field_type and operator")
    field_name = rule.get("field_name")
    if not isinstance(field_name, str) or not field_name:
        _bad(f"{where}.field_name", "is required: the name of the user field to filter on")
    field_type = rule.get("field_type")
    if field_type not in FIELD_TYPES:
        _bad(f"{where}.field_type", f"must be one of {', '.join(sorted(FIELD_TYPES))}")
    operator = rule.get("operator")
    if operator not in OPERATORS:
        _bad(f"{where}.operator", f"must be one of {', '.join(sorted(OPERATORS))}")
    needed, accepted_types = OPERATORS[str(operator)]
    if field_type not in accepted_types:
        _bad(
            f"{where}.operator",
            f"'{operator}' does not apply to field_type '{field_type}' "
            f"(it takes {', '.join(sorted(accepted_types))})",
        )
    missing = [name for name in needed if rule.get(name) in (None, "")]
    if missing:
        _bad(where, f"operator '{operator}' needs {', '.join(missing)}")
    if "time_factor" in needed and rule.get("time_factor") not in TIME_FACTORS:
        _bad(f"{where}.time_factor", f"must be one of {', '.join(sorted(TIME_FACTORS))}")


def _bad(where: str, problem: str) -> NoReturn:
    """Raise the settings error for one rule field.

    Args:
        where: The rule field at fault.
        problem: What is wrong and how to fix it.

    Raises:
        SpaazaConfigError: Always.
    """
    msg = f"Setting segment_rules is invalid: {where} {problem}."
    raise SpaazaConfigError(msg)
