"""The segment filter vocabulary (operators, field types, time factors) shared by tap and sandbox."""

from __future__ import annotations

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
