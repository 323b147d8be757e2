"""The users export's columns and their types: the one place this fact lives."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


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
