"""With the SDK's type conformance off, every emitted record still matches the emitted SCHEMA."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_spaaza_users.sandbox import Sandbox

DIALECTS = [
    {},
    {"booleans": "1_0", "datetimes": "iso_z", "column_order": "shuffled"},
    {"booleans": "yes_no", "datetimes": "iso_offset", "extra_columns": ["nickname"]},
    {"missing_columns": ["birthday", "average_basket_value"], "bom": True, "crlf": True},
]


def checker() -> jsonschema.FormatChecker:
    """A format checker that also checks RFC 3339 date-times (UTC offset required)."""
    formats = jsonschema.FormatChecker()

    @formats.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True  # formats apply to strings only; the type keyword judges the rest
        if value[10:11] != "T":
            return False
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None

    return formats


def validate(messages: list[dict[str, Any]]) -> int:
    """Validate each RECORD against the latest SCHEMA of its stream; return the count."""
    schemas: dict[str, dict[str, Any]] = {}
    count = 0
    for message in messages:
        if message["type"] == "SCHEMA":
            schemas[message["stream"]] = message["schema"]
        elif message["type"] == "RECORD":
            schema = schemas[message["stream"]]
            jsonschema.Draft7Validator(schema, format_checker=checker()).validate(message["record"])
            assert set(message["record"]) <= set(schema["properties"])
            count += 1
    return count


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_record_matches_the_emitted_schema(
    dialect: dict[str, Any],
    sandbox_factory: Callable[..., Sandbox],
    sync: Callable[..., Any],
) -> None:
    sandbox = sandbox_factory(users=150, seed=11)
    if dialect:
        sandbox.set_csv_dialect(**dialect)

    output = sync(sandbox.tap_config())

    assert output.error is None
    assert validate(output.messages) == len(sandbox.users()) == 150
    numbers = [r["average_basket_value"] for r in output.records]
    assert all(n is None or isinstance(n, decimal.Decimal) for n in numbers)


def test_a_wrongly_typed_value_would_be_caught() -> None:
    schema = {"type": "object", "properties": {"created_date": {"format": "date-time"}}}
    messages = [
        {"type": "SCHEMA", "stream": "users", "schema": schema},
        {"type": "RECORD", "stream": "users", "record": {"created_date": "2026-01-01 10:00:00"}},
    ]
    with pytest.raises(jsonschema.ValidationError):
        validate(messages)
