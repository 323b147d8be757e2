"""What Spaaza's user-export contract says, in one place for the tap and the sandbox.

The users CSV's columns and their types, the vocabulary of a segment's rules (field types,
operators, joins, time factors), and how date-times are read and written. The sandbox imports
nothing else of the tap.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

# The users CSV ------------------------------------------------------------------------------


class ColumnType(str, enum.Enum):
    """How a CSV column's text is typed in a record."""

    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"  # YYYY-MM-DD
    DATE_TIME = "date-time"  # YYYY-MM-DD HH:MM:SS UTC in the file, RFC 3339 in records
    DECIMAL = "decimal"  # "12.50" in the file; a Decimal (JSON number) keeping every digit


I = ColumnType.INTEGER  # noqa: E741
S = ColumnType.STRING
B = ColumnType.BOOLEAN
D = ColumnType.DATE
DT = ColumnType.DATE_TIME
DEC = ColumnType.DECIMAL

#: Every column of the users export, in the sandbox's file order.
USER_COLUMNS: dict[str, ColumnType] = {
    # profile
    "id": I,
    "member_number": S,
    "username": S,
    "first_name": S,
    "last_name": S,
    "gender": S,
    "birthday": D,
    "country_code": S,
    "language": S,
    "phone_number": S,
    "created_date": DT,
    "last_modified_date": DT,
    "address_streetname": S,
    "address_housenumber": S,
    "address_housenumber_extension": S,
    "address_towncity": S,
    "address_regionstate": S,
    "address_postalcode": S,
    "favorite_store": S,
    "is_employee": B,
    "referral_code": S,
    # RFM
    "recency": I,
    "frequency": I,
    "monetary": I,
    "overall": I,
    "average_basket_value": DEC,
    "days_since_last_purchase": I,
    "number_of_purchases": I,
    "online_shopper": B,
    "offline_shopper": B,
    # loyalty
    "loyalty_status_name": S,
    "loyalty_status_loyalty_level_id": I,
    "loyalty_status_points_balance_current": I,
    "loyalty_status_points_to_proceed_next_level": I,
    "loyalty_status_monetary_balance_current": DEC,
    "loyalty_status_date_reached": DT,
    "loyalty_status_next_review_date": DT,
    "points_wallet_total": I,
    # opt-ins
    "opt_in_programme_programme_opted_in": B,
    "opt_in_programme_join_date": DT,
    "opt_in_secondary": B,
    "mailing_list_sub_offered": B,
    "mailing_list_subscribed": B,
    "printed_mailing_list_subscribed": B,
    "push_notification_subscribed": B,
}

#: The first bytes of a gzip file: an export file may come compressed (or not).
GZIP_MAGIC = b"\x1f\x8b"
PRIMARY_KEY = "id"
REPLICATION_KEY = "created_date"

_JSON_TYPES: dict[ColumnType, dict[str, object]] = {
    ColumnType.INTEGER: {"type": ["integer", "null"]},
    ColumnType.STRING: {"type": ["string", "null"]},
    ColumnType.BOOLEAN: {"type": ["boolean", "null"]},
    ColumnType.DATE: {"type": ["string", "null"], "format": "date"},
    ColumnType.DATE_TIME: {"type": ["string", "null"], "format": "date-time"},
    ColumnType.DECIMAL: {"type": ["number", "null"]},
}


def users_json_schema(extra_columns: Sequence[str] = ()) -> dict[str, Any]:
    """Return the users stream's JSON Schema, derived from `USER_COLUMNS`.

    Every column is nullable except the primary key; columns found in the file that are not in
    `USER_COLUMNS` are added as nullable strings.

    Args:
        extra_columns: Names of the file's unknown columns, in file order.

    Returns:
        A fresh JSON Schema object (safe to modify).
    """
    properties: dict[str, Any] = {
        name: dict(_JSON_TYPES[kind]) for name, kind in USER_COLUMNS.items()
    }
    properties[PRIMARY_KEY] = {"type": ["integer"]}
    for name in extra_columns:
        properties.setdefault(name, {"type": ["string", "null"]})
    return {
        "type": "object",
        "properties": properties,
        "required": [PRIMARY_KEY],
    }


# Segments -----------------------------------------------------------------------------------

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

#: How a segment combines its rules: ``all`` = AND, ``any`` = OR.
JOINS = frozenset({"all", "any"})


# Date-times ---------------------------------------------------------------------------------


#: How far in the future a bookmark or start_date may lie (clocks differ a little).
CLOCK_SKEW = dt.timedelta(minutes=5)


def parse_utc(text: str) -> dt.datetime:
    """Read an ISO 8601 / RFC 3339 date or date-time as an aware UTC datetime (naive means UTC).

    Reads what the CSV holds (``YYYY-MM-DD HH:MM:SS``, or ISO 8601 with ``T`` and ``Z`` or an
    offset), what rules and task dates carry, and what the state keeps.

    Args:
        text: The date-time.

    Returns:
        The moment in UTC.

    Raises:
        ValueError: When the text is not a date or date-time.
    """
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def utc_text(moment: dt.datetime | None) -> str | None:
    """A moment as records and the state write date-times: ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``.

    Two such texts compare like the moments they stand for, so a window test per record
    needs no parsing.

    Args:
        moment: An aware datetime, or None.

    Returns:
        The text, or None.
    """
    return moment.astimezone(dt.timezone.utc).isoformat() if moment is not None else None
