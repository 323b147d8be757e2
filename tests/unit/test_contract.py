"""The contract: the users stream's JSON Schema, derived from the one column list."""

from __future__ import annotations

from tap_spaaza_users.contract import PRIMARY_KEY, USER_COLUMNS, ColumnType, users_json_schema


def test_schema_has_every_column_in_order() -> None:
    schema = users_json_schema()
    assert list(schema["properties"]) == list(USER_COLUMNS)
    assert schema["type"] == "object"


def test_primary_key_is_a_non_null_integer() -> None:
    schema = users_json_schema()
    assert schema["properties"][PRIMARY_KEY] == {"type": ["integer"]}
    assert PRIMARY_KEY in schema["required"]


def test_types_and_formats_follow_the_column_types() -> None:
    properties = users_json_schema()["properties"]
    assert properties["recency"] == {"type": ["integer", "null"]}
    assert properties["username"] == {"type": ["string", "null"]}
    assert properties["is_employee"] == {"type": ["boolean", "null"]}
    assert properties["birthday"] == {"type": ["string", "null"], "format": "date"}
    assert properties["created_date"] == {"type": ["string", "null"], "format": "date-time"}
    assert properties["average_basket_value"] == {"type": ["number", "null"]}
    for name, kind in USER_COLUMNS.items():
        if name != PRIMARY_KEY:
            assert "null" in properties[name]["type"], name
        if kind is ColumnType.DATE_TIME:
            assert properties[name]["format"] == "date-time", name


def test_extra_columns_are_nullable_strings_after_the_known_ones() -> None:
    schema = users_json_schema(["shoe_size", "nickname"])
    assert list(schema["properties"])[-2:] == ["shoe_size", "nickname"]
    assert schema["properties"]["shoe_size"] == {"type": ["string", "null"]}


def test_extra_columns_never_override_a_known_column() -> None:
    schema = users_json_schema(["recency"])
    assert schema["properties"]["recency"] == {"type": ["integer", "null"]}


def test_each_call_returns_a_fresh_schema() -> None:
    first = users_json_schema()
    first["properties"]["recency"]["type"] = ["string"]
    assert users_json_schema()["properties"]["recency"] == {"type": ["integer", "null"]}
