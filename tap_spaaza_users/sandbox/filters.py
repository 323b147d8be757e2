"""Segment validation and evaluation: every operator, field type and time factor of the contract."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from tap_spaaza_users.contract import (
    FIELD_TYPES,
    JOINS,
    OPERATORS,
    TIME_FACTORS,
    USER_COLUMNS,
    parse_utc,
)
from tap_spaaza_users.sandbox.errors import reject

Row = dict[str, str]
Bounds = tuple["datetime | None", "datetime | None"]
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
#: minutes per ``time_factor`` (months and years on average), to bound a ``time_amount``
_FACTOR_MINUTES = {"minute": 1, "hour": 60, "day": 1440, "week": 10080, "month": 43830,
                   "year": 525960}  # fmt: skip
#: how far back a relative rule may reach, so its cutoff stays a date the sandbox can count
MAX_RELATIVE_YEARS = 1000


@dataclass(frozen=True)
class Rule:
    """A validated rule, with its operands already parsed."""

    column: str
    field_type: str
    operator: str
    operands: dict[str, Any]


@dataclass(frozen=True)
class Segment:
    """A validated segment: a join over rules."""

    join: str
    rules: tuple[Rule, ...]

    def matches(self, row: Row, now: datetime) -> bool:
        """Return whether ``row`` is in the segment at sandbox time ``now``."""
        results = (evaluate(rule, row, now) for rule in self.rules)
        return all(results) if self.join == "all" else any(results)


def created_bounds(
    segment: Segment | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Return bounds that every user in the segment has its ``created_date`` within.

    Only ``join: all`` segments (or single rules) narrow the bounds; ``None`` is unbounded.
    """
    low: datetime | None = None
    high: datetime | None = None
    if segment is None or (segment.join == "any" and len(segment.rules) != 1):
        return low, high
    for rule in segment.rules:
        if rule.column != "created_date" or rule.field_type != "date":
            continue
        rule_low, rule_high = _rule_bounds(rule, now)
        if rule_low is not None:
            low = rule_low if low is None else max(low, rule_low)
        if rule_high is not None:
            high = rule_high if high is None else min(high, rule_high)
    return low, high


def _rule_bounds(rule: Rule, now: datetime) -> Bounds:
    """Return the created_date bounds one date rule implies."""
    ops = rule.operands
    if rule.operator in ("is_after_date", "is_between_date"):
        return ops["start_date"], ops.get("end_date")
    if rule.operator == "is_before_date":
        return None, ops["end_date"]
    if rule.operator in ("is_date", "is"):
        day = ops["value"].replace(hour=0, minute=0, second=0, microsecond=0)
        return day, (day + timedelta(days=1) if day.date() < date.max else None)
    if rule.operator in ("relative_less_than", "relative_more_than"):
        cutoff = relative_cutoff(now, ops["time_factor"], ops["time_amount"])
        return (cutoff, now) if rule.operator == "relative_less_than" else (None, cutoff)
    return None, None


def parse_segment(raw: object, chain_id: int) -> Segment:
    """Validate an inline ``trigger.segment`` for ``chain_id``.

    Raises:
        ApiError: 400 naming what is wrong, or 403 for another chain's segment.
    """
    if not isinstance(raw, dict):
        reject("invalid_segment", "trigger.segment must be an object")
    if raw.get("index", "users") != "users":
        reject("unknown_index", f"unknown segment index {raw.get('index')!r}")
    if raw.get("entity", "people") != "people":
        reject("unknown_entity", f"unknown segment entity {raw.get('entity')!r}")
    if "chain_id" in raw and raw["chain_id"] != chain_id:
        reject("forbidden", "segment.chain_id is not the token's chain", 403)
    join = raw.get("join", "all")
    if not isinstance(join, str) or join not in JOINS:
        reject("unknown_join", f"unknown join {join!r}; use 'all' or 'any'")
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        reject("invalid_rules", "segment.rules must be a list")
    return Segment(join, tuple(parse_rule(rule, i) for i, rule in enumerate(rules)))


def parse_rule(raw: object, index: int) -> Rule:
    """Validate one rule (``index`` is its position, for messages).

    Raises:
        ApiError: 400 naming the problem.
    """
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        reject("invalid_rule", f"{where} must be an object")
    for key in ("field_name", "field_type", "operator"):
        if key not in raw:
            reject("missing_rule_field", f"{where} has no {key}")
    column = str(raw["field_name"]).replace(".", "_")
    if column not in USER_COLUMNS:
        reject("unknown_field", f"{where}: unknown field {raw['field_name']!r}")
    field_type, operator = raw["field_type"], raw["operator"]
    if not isinstance(field_type, str) or field_type not in FIELD_TYPES:
        reject("unknown_field_type", f"{where}: unknown field type {field_type!r}")
    if not isinstance(operator, str) or operator not in OPERATORS:
        reject("unknown_operator", f"{where}: unknown operator {operator!r}")
    needed, types = OPERATORS[operator]
    if field_type not in types:
        msg = f"{where}: operator {operator!r} does not fit field type {field_type!r}"
        reject("operator_field_type_mismatch", msg)
    missing = [key for key in needed if raw.get(key) in (None, "")]
    if missing:
        msg = f"{where}: operator {operator!r} needs {', '.join(missing)}"
        reject("missing_rule_field", msg)
    operands = {key: _operand(key, raw[key], field_type, where) for key in needed}
    _check_reach(operands, where)
    return Rule(column, field_type, operator, operands)


def _check_reach(operands: dict[str, Any], where: str) -> None:
    """Refuse a relative rule reaching back further than ``MAX_RELATIVE_YEARS``."""
    factor = operands.get("time_factor")
    if factor is None:
        return
    reach = cast("int", operands["time_amount"]) * _FACTOR_MINUTES[cast("str", factor)]
    if reach > MAX_RELATIVE_YEARS * _FACTOR_MINUTES["year"]:
        msg = f"{where}: time_amount reaches back more than {MAX_RELATIVE_YEARS} years"
        reject("invalid_time_amount", msg)


def _operand(key: str, value: object, field_type: str, where: str) -> object:
    """Parse one operand of a rule according to its role and the field type."""
    if key in ("start_date", "end_date") or (key == "value" and field_type == "date"):
        return _rule_date(value, key, where)
    if key in ("min", "max") or (key == "value" and field_type == "number"):
        return _rule_number(value, key, where)
    if key == "time_factor":
        if not isinstance(value, str) or value not in TIME_FACTORS:
            reject("unknown_time_factor", f"{where}: unknown time_factor {value!r}")
        return value
    if key == "time_amount":
        number = _rule_number(value, key, where)
        too_far = number > MAX_RELATIVE_YEARS * _FACTOR_MINUTES["year"]  # any factor
        if number < 0 or too_far or number != int(number):
            reject("invalid_time_amount", f"{where}: time_amount must be a count")
        return int(number)
    if key == "value" and field_type == "boolean":
        return _rule_bool(value, where)
    return str(value)


def _rule_date(value: object, key: str, where: str) -> datetime:
    """Parse a rule's date operand."""
    try:
        return parse_utc(str(value))
    except (ValueError, OverflowError):  # overflow: a year-1 or year-9999 moment off UTC
        reject("invalid_date", f"{where}: {key} {value!r} is not a date in years 1 to 9999 UTC")


def _rule_number(value: object, key: str, where: str) -> Decimal:
    """Parse a rule's numeric operand."""
    try:
        number = None if isinstance(value, bool) else Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        reject("invalid_number", f"{where}: {key} {value!r} is not a number")
    return number


def _rule_bool(value: object, where: str) -> bool:
    """Parse a rule's boolean operand."""
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        reject("invalid_boolean", f"{where}: value {value!r} is not a boolean")
    return False


def _cell_date(text: str) -> datetime | None:
    """Parse a CSV date/date-time cell (``None`` when empty or not a date)."""
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError):
        return None


def _cell_number(text: str) -> Decimal | None:
    """Parse a CSV numeric cell (``None`` when empty or not a number)."""
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _cell_bool(text: str) -> bool | None:
    """Parse a CSV boolean cell (``None`` when empty or not a boolean)."""
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _cell(rule: Rule, text: str) -> object:
    """Type a cell by the rule's field type."""
    if rule.field_type == "date":
        return _cell_date(text)
    if rule.field_type == "number":
        return _cell_number(text)
    if rule.field_type == "boolean":
        return _cell_bool(text)
    return text


def _shift_months(when: datetime, months: int) -> datetime:
    """Return ``when`` moved back by ``months`` calendar months (day clamped)."""
    total = when.year * 12 + when.month - 1 - months
    year, month = divmod(total, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def relative_cutoff(now: datetime, factor: str, amount: int) -> datetime:
    """Return the instant ``amount`` ``factor`` units before ``now`` (calendar months/years)."""
    if factor == "month":
        return _shift_months(now, amount)
    if factor == "year":
        return _shift_months(now, 12 * amount)
    unit = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}[factor]
    return now - timedelta(seconds=unit * amount)


def evaluate(rule: Rule, row: Row, now: datetime) -> bool:  # noqa: PLR0911
    """Return whether ``row`` satisfies ``rule`` at sandbox time ``now``."""
    text = row.get(rule.column, "")
    ops, op = rule.operands, rule.operator
    if op in ("contains", "does_not_contain"):
        found = str(ops["value"]).lower() in text.lower()
        return found if op == "contains" else not found
    if op in ("is", "is_not"):
        return _equals(rule, text) == (op == "is")
    cell = _cell(rule, text)
    if cell is None:
        return False
    if op == "is_date":
        return cast("bool", cell.date() == ops["value"].date())  # type: ignore[attr-defined]
    if op == "is_after_date":
        return cast("bool", cell > ops["start_date"])
    if op == "is_before_date":
        return cast("bool", cell < ops["end_date"])
    if op == "is_between_date":
        return cast("bool", ops["start_date"] <= cell <= ops["end_date"])
    if op == "is_between_number":
        return cast("bool", ops["min"] <= cell <= ops["max"])
    cutoff = relative_cutoff(now, ops["time_factor"], ops["time_amount"])
    if op == "relative_less_than":
        return cutoff <= cell <= now  # type: ignore[operator]
    return cell < cutoff  # type: ignore[operator]


def _equals(rule: Rule, text: str) -> bool:
    """Exact equality for ``is``/``is_not``: case-sensitive on keyword, not on text."""
    value = rule.operands["value"]
    if rule.field_type == "keyword":
        return cast("bool", text == value)
    if rule.field_type == "text":
        return text.lower() == str(value).lower()
    cell = _cell(rule, text)
    if rule.field_type == "date" and cell is not None:
        return cast("bool", cell == value)
    return cell is not None and cell == value
