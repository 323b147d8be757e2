"""The users export's columns and their types: the one place this fact lives."""

from __future__ import annotations

import enum


class ColumnType(str, enum.Enum):
    """How a CSV column's text is typed in a record."""

    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"  # YYYY-MM-DD
    DATE_TIME = "date-time"  # YYYY-MM-DD HH:MM:SS UTC in the file, RFC 3339 in records
    DECIMAL = "decimal"  # "12.50" in the file; kept as a string to keep every digit


I = ColumnType.INTEGER
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
