"""The row typer's inline checks agree with the converters on every value at their edges."""

from __future__ import annotations

import pytest

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType
from tap_spaaza_users.records.values import CONVERSION_ERRORS, row_typer, to_decimal

COLUMNS = list(USER_COLUMNS)
DECIMAL = next(name for name, kind in USER_COLUMNS.items() if kind is ColumnType.DECIMAL)
FILLED = {
    ColumnType.INTEGER: "1",
    ColumnType.STRING: "x",
    ColumnType.BOOLEAN: "true",
    ColumnType.DATE: "1990-02-03",
    ColumnType.DATE_TIME: "2024-05-01 12:00:00",
    ColumnType.DECIMAL: "1",
}


def typed_decimal(value: str) -> object:
    """The decimal column of a row typed by the row typer, or the error's type."""
    row = [FILLED[USER_COLUMNS[name]] for name in COLUMNS]
    row[COLUMNS.index(DECIMAL)] = value
    try:
        return row_typer(COLUMNS, [])(row)[DECIMAL]
    except CONVERSION_ERRORS as exc:
        return type(exc)


def converted(value: str) -> object:
    """What ``to_decimal`` makes of the value, or the error's type."""
    try:
        return to_decimal(value)
    except CONVERSION_ERRORS as exc:
        return type(exc)


@pytest.mark.parametrize(
    "value",
    [
        "0", "-0", "0.0", "12.50", "+3.1", "  5", "1e299", "9.99e299", "1e300", "-1e308",
        "1.7976931348623157e308", "1.8e308", "1e-299", "1e-300", "1e-320", "1e-330", "1e-400",
        "0E-1000", "0e5000", "1e999999", "NaN", "-inf", "1_0", "\u0661\u0662",
        "123456789012345678901234567890.123456789",
    ],
)  # fmt: skip
def test_decimals_are_typed_inline_as_to_decimal_types_them(value: str) -> None:
    inline, reference = typed_decimal(value), converted(value)
    if isinstance(reference, type):  # rejected: the row is typed again and found invalid
        assert isinstance(inline, type)
        assert issubclass(inline, CONVERSION_ERRORS)
    else:
        assert inline == reference
        assert str(inline) == str(reference)
