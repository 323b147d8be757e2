"""Type the export's cells: a converter per column type, one function per header for a row."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType

if TYPE_CHECKING:
    from collections.abc import Callable

#: What a converter raises for a value that is not of its type.
CONVERSION_ERRORS = (ValueError, KeyError, TypeError, ArithmeticError)

_BOOLEANS: dict[str, bool] = {}
for _word, _value in {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}.items():
    for _spelling in {_word, _word.upper(), _word.capitalize()}:
        _BOOLEANS[_spelling] = _value


def to_boolean(value: str) -> bool:
    """Type a boolean cell: true/false, 1/0, yes/no in any case."""
    try:
        return _BOOLEANS[value]
    except KeyError:
        word = value.lower()
        if word in _BOOLEANS:
            return _BOOLEANS[word]
        raise


def to_integer(value: str) -> int:
    """Type an integer cell: ASCII digits with an optional sign (no ``1_000``, no ``١٢``)."""
    if "_" in value or not value.isascii():
        raise ValueError(value)
    return int(value)


def to_decimal(value: str) -> Decimal:
    """Type a decimal cell keeping every digit.

    Like integers, only ASCII digits without ``_``. NaN, infinities and numbers beyond a
    double's range (``1e999999``, which JSON readers would turn into infinity, or
    ``1e-999999`` into 0) are rejected.
    """
    if "_" in value or not value.isascii():
        raise ValueError(value)
    number = Decimal(value)
    if number.is_finite():
        as_double = float(number)
        if math.isfinite(as_double) and (as_double or not number):
            return number
    raise InvalidOperation(value)


def to_date(value: str) -> str:
    """Type a date cell as YYYY-MM-DD."""
    if len(value) == 10 and value[4:8:3] == "--":  # noqa: PLR2004 - the file's own format
        _date_from_iso(value)  # validates
        return value
    return _date_from_iso(value).isoformat()


def to_date_time(value: str) -> str:
    """Type a date-time cell as RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SS+00:00`).

    The file's own format (`YYYY-MM-DD HH:MM:SS`, UTC) takes a fast path; ISO 8601 with `T`
    and `Z` or an offset is converted to UTC. Fractional seconds are kept when present.
    """
    if len(value) == 19 and value[4:17:3] in _PLAIN_DATE_TIME_MARKS:  # noqa: PLR2004
        _date_time_from_iso(value)  # validates
        return value.replace(" ", "T") + "+00:00"
    if len(value) < 16 or value[10] not in " Tt":  # noqa: PLR2004 - a date-time, not a date
        raise ValueError(value)
    parsed = _date_time_from_iso(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc).isoformat()
    return parsed.astimezone(timezone.utc).isoformat()


_date_from_iso = date.fromisoformat
_date_time_from_iso = datetime.fromisoformat
_PLAIN_DATE_TIME_MARKS = ("-- ::", "--T::")  # characters 4, 7, 10, 13 and 16

#: How each non-string column type is converted (values are never empty here).
CONVERTERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.INTEGER: to_integer,
    ColumnType.BOOLEAN: to_boolean,
    ColumnType.DECIMAL: to_decimal,
    ColumnType.DATE: to_date,
    ColumnType.DATE_TIME: to_date_time,
}


def _not_valid(value: str) -> Any:  # noqa: ANN401 - never returns
    """Reject a value a row typer's inline check refused (the row is then typed again)."""
    raise ValueError(value)


#: The inline typing of each column type in a row typer: ``v`` is the cell (never empty),
#: the names are the typer's globals. Each is what its CONVERTERS entry does, for the
#: file's own spellings; anything else raises and the row is typed again with CONVERTERS.
_INLINE: dict[ColumnType, str] = {
    ColumnType.INTEGER: 'int(v) if v.isascii() and "_" not in v else not_valid(v)',
    ColumnType.BOOLEAN: "booleans[v]",
    # Within 10**±300 a finite decimal is a finite, non-zero double: no float() needed.
    ColumnType.DECIMAL: (
        'd if "_" not in v and v.isascii() and (d := decimal(v)).is_finite() '
        "and -300 < d.adjusted() < 300 else to_decimal(v)"
    ),
    ColumnType.DATE: 'v if len(v) == 10 and v[4:8:3] == "--" and date_from(v) else to_date(v)',
    ColumnType.DATE_TIME: (
        'v.replace(" ", "T") + "+00:00" if len(v) == 19 and v[4:17:3] in marks '
        "and date_time_from(v) else to_date_time(v)"
    ),
}


def row_typer(columns: list[str], missing: list[str]) -> Callable[[list[str]], dict[str, Any]]:
    """One function that turns a row of the file (its cells, by position) into a record.

    It types every known column inline, in one expression per column, with no call per
    cell for strings and integers; unknown columns stay strings, ``missing`` ones are None,
    empty cells are None. A value not in the file's own spellings raises one of
    CONVERSION_ERRORS: type that row again with CONVERTERS (which also say why).

    Args:
        columns: The file's header.
        missing: Known columns the file lacks.

    Returns:
        The function; column names reach it as values, never as code.
    """
    names: dict[str, Any] = {
        "not_valid": _not_valid,
        "booleans": _BOOLEANS,
        "to_decimal": to_decimal,
        "decimal": Decimal,
        "to_date": to_date,
        "to_date_time": to_date_time,
        "date_from": _date_from_iso,
        "date_time_from": _date_time_from_iso,
        "marks": _PLAIN_DATE_TIME_MARKS,
    }
    strings, others = [], []
    for position, name in enumerate(columns):
        names[f"k{position}"] = name
        kind = USER_COLUMNS.get(name, ColumnType.STRING)
        if kind is ColumnType.STRING:
            strings.append(f"k{position}: row[{position}] or None")
        else:
            inline = _INLINE[kind]
            others.append(f"k{position}: (({inline}) if (v := row[{position}]) else None)")
    for position, name in enumerate(missing, len(columns)):
        names[f"k{position}"] = name
        others.append(f"k{position}: None")
    items = strings + others  # the order records always had: strings first
    source = "def typed(row):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, "<row typer>", "exec"), names)  # noqa: S102 - positions only, see above
    typed: Callable[[list[str]], dict[str, Any]] = names["typed"]
    return typed
