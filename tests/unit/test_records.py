"""The users CSV reader: dialect variants, typing, and malformed rows, on local files."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from jsonschema import Draft7Validator, FormatChecker

from tap_spaaza_users.contract import USER_COLUMNS, ColumnType, users_json_schema
from tap_spaaza_users.errors import SpaazaInvalidRowError
from tap_spaaza_users.records import lines as csv_lines
from tap_spaaza_users.records import reader as records
from tap_spaaza_users.records.reader import UsersCsvReader
from tap_spaaza_users.sandbox.export import csv_line

if TYPE_CHECKING:
    from pathlib import Path

LOGGER = logging.getLogger("test_records")
SAMPLE = {
    ColumnType.INTEGER: "42",
    ColumnType.STRING: "text",
    ColumnType.BOOLEAN: "true",
    ColumnType.DATE: "1990-02-03",
    ColumnType.DATE_TIME: "2024-05-01 12:00:00",
    ColumnType.DECIMAL: "12.50",
}


def user_row(**overrides: str) -> dict[str, str]:
    """A valid row as the file's strings, every column filled."""
    row = {name: SAMPLE[kind] for name, kind in USER_COLUMNS.items()}
    row.update(overrides)
    return row


def write_csv(  # noqa: PLR0913
    path: Path,
    rows: Sequence[Mapping[str, str] | Sequence[str]],
    *,
    header: list[str] | None = None,
    bom: bool = False,
    newline: str = "\n",
    gzipped: bool = False,
) -> Path:
    header = header or list(USER_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    for row in [header, *rows]:
        cells = [row.get(name, "") for name in header] if isinstance(row, Mapping) else row
        if any("\0" in cell for cell in cells):  # Python 3.10's csv writer refuses NUL
            buffer.write(csv_line(cells, newline))
        else:
            writer.writerow(cells)
    data = (("\ufeff" if bom else "") + buffer.getvalue()).encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def read_all(path: Path, **kwargs: object) -> list[dict[str, object]]:
    with UsersCsvReader(path, task_id=77, logger=LOGGER, **kwargs) as reader:  # type: ignore[arg-type]
        return list(reader)


def test_every_column_is_typed(tmp_path: Path) -> None:
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row()]))
    assert set(record) == set(USER_COLUMNS)
    assert record["id"] == 42
    assert record["username"] == "text"
    assert record["is_employee"] is True
    assert record["birthday"] == "1990-02-03"
    assert record["created_date"] == "2024-05-01T12:00:00+00:00"
    assert record["average_basket_value"] == Decimal("12.50")
    assert str(record["average_basket_value"]) == "12.50"


def test_empty_values_are_null_for_every_type(tmp_path: Path) -> None:
    row = dict.fromkeys(USER_COLUMNS, "") | {"id": "1"}
    [record] = read_all(write_csv(tmp_path / "u.csv", [row]))
    assert {name for name, value in record.items() if value is not None} == {"id"}


def test_strings_are_byte_identical(tmp_path: Path) -> None:
    tricky = [
        'He said "hi", then left',
        "line one\nline two\r\nline three",
        "  leading and trailing  ",
        "Zoë Żółć Nguyễn 東京 🚀",
        "a,b,c",
        '"',
    ]
    rows = [user_row(id=str(n), first_name=value) for n, value in enumerate(tricky, 1)]
    records = read_all(write_csv(tmp_path / "u.csv", rows, newline="\r\n"))
    assert [r["first_name"] for r in records] == tricky


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("True", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("No", False),
        ("YeS", True),
        ("", None),
    ],
)
def test_boolean_spellings(tmp_path: Path, text: str, expected: object) -> None:
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row(is_employee=text)]))
    assert record["is_employee"] is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01 12:00:00", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T14:30:00+02:30", "2024-05-01T12:00:00+00:00"),
        ("2024-05-01T00:30:00-01:00", "2024-05-01T01:30:00+00:00"),
        ("2024-05-01T12:00:00.250Z", "2024-05-01T12:00:00.250000+00:00"),
        ("2024-05-01T12:00:00", "2024-05-01T12:00:00+00:00"),
    ],
)
def test_date_times_become_rfc3339_utc(tmp_path: Path, text: str, expected: object) -> None:
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row(created_date=text)]))
    assert record["created_date"] == expected


def test_decimals_keep_every_digit(tmp_path: Path) -> None:
    text = "1234567890.123456789012345678900"
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row(average_basket_value=text)]))
    assert record["average_basket_value"] == Decimal(text)
    assert str(record["average_basket_value"]) == text


def test_bom_crlf_and_gzip_by_magic_bytes(tmp_path: Path) -> None:
    rows = [user_row(id=str(n)) for n in range(1, 4)]
    plain = read_all(write_csv(tmp_path / "a.csv", rows))
    variant = read_all(write_csv(tmp_path / "b.csv", rows, bom=True, newline="\r\n", gzipped=True))
    assert variant == plain
    assert [r["id"] for r in variant] == [1, 2, 3]


def test_nul_bytes_are_kept(tmp_path: Path) -> None:
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row(last_name="a\x00b")]))
    assert record["last_name"] == "a\x00b"


def test_huge_field_is_read(tmp_path: Path) -> None:
    big = "x" * 3_000_000
    [record] = read_all(write_csv(tmp_path / "u.csv", [user_row(address_streetname=big)]))
    assert record["address_streetname"] == big


def test_shuffled_extra_and_missing_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header = [*reversed(USER_COLUMNS), "shoe_size", "nickname"]
    header.remove("gender")
    header.remove("birthday")
    row = user_row() | {"shoe_size": "44", "nickname": ""}
    path = write_csv(tmp_path / "u.csv", [row], header=header)
    with caplog.at_level(logging.WARNING), UsersCsvReader(path, task_id=5, logger=LOGGER) as reader:
        assert reader.columns == header
        assert reader.extra_columns == ["shoe_size", "nickname"]
        assert reader.missing_columns == ["gender", "birthday"]
        [record] = list(reader)
    assert record["shoe_size"] == "44"
    assert record["nickname"] is None
    assert record["gender"] is None
    assert record["birthday"] is None
    assert record["id"] == 42
    assert set(record) == set(USER_COLUMNS) | {"shoe_size", "nickname"}
    warned = [r.getMessage() for r in caplog.records]
    for name in ("shoe_size", "nickname", "gender", "birthday"):
        assert sum(repr(name) in message for message in warned) == 1


def test_bad_value_fails_naming_task_line_column_and_value(tmp_path: Path) -> None:
    rows = [
        user_row(id="1", first_name="two\nlines"),
        user_row(id="2", recency="not-a-number"),
    ]
    with pytest.raises(SpaazaInvalidRowError) as caught:
        read_all(write_csv(tmp_path / "u.csv", rows))
    message = str(caught.value)
    assert "task 77" in message
    assert "line 4" in message  # header, a two-line row, then this one
    assert "'recency'" in message
    assert "'not-a-number'" in message


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("is_employee", "maybe"),
        ("birthday", "2024-13-45"),
        ("created_date", "yesterday"),
        ("created_date", "2024-05-01"),
        ("average_basket_value", "twelve"),
        ("average_basket_value", "NaN"),
        ("id", "1.5"),
        ("recency", "1_000"),
        ("recency", "\u0661\u0662"),  # Arabic-Indic digits: int() reads them, JSON does not
        ("average_basket_value", "1_000.5"),
        ("average_basket_value", "\uff11.5"),  # a full-width digit
        ("average_basket_value", "1e999999"),  # beyond a double: JSON readers get infinity
        ("average_basket_value", "-1e999999"),
        ("average_basket_value", "1e-999999"),  # below a double: JSON readers get 0
        ("average_basket_value", "inf"),
        ("average_basket_value", "-Infinity"),
        ("average_basket_value", "nan"),
    ],
)
def test_values_not_of_their_type_are_invalid(tmp_path: Path, column: str, value: str) -> None:
    with pytest.raises(SpaazaInvalidRowError, match=repr(column)):
        read_all(write_csv(tmp_path / "u.csv", [user_row(**{column: value})]))


def test_long_bad_value_is_truncated_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(SpaazaInvalidRowError) as caught:
        read_all(write_csv(tmp_path / "u.csv", [user_row(recency="9" * 50 + "x" * 5000)]))
    assert len(str(caught.value)) < 400
    assert "5050 characters" in str(caught.value)


def test_wrong_field_count_fails(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [user_row(), ["1", "2", "3"]])
    with pytest.raises(SpaazaInvalidRowError, match=r"line 3: expected 45 fields, found 3"):
        read_all(path)


def test_skip_mode_logs_counts_and_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows: list[Mapping[str, str] | Sequence[str]] = [
        user_row(id="1"),
        ["2", "short"],
        user_row(id="3", overall="five"),
        user_row(id="4"),
    ]
    path = write_csv(tmp_path / "u.csv", rows)
    with (
        caplog.at_level(logging.WARNING),
        UsersCsvReader(path, task_id=9, on_invalid_row="skip", logger=LOGGER) as reader,
    ):
        ids = [record["id"] for record in reader]
    assert ids == [1, 4]
    assert reader.rows == 2
    assert reader.skipped_rows == 2
    skipped = [r for r in caplog.records if "row skipped" in r.getMessage()]
    assert [r.levelno for r in skipped] == [logging.WARNING, logging.WARNING]
    assert "line 3" in skipped[0].getMessage()
    assert "line 4" in skipped[1].getMessage()


def test_unterminated_quote_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(",".join(USER_COLUMNS) + '\n1,"never closed\n')
    with pytest.raises(SpaazaInvalidRowError, match="task 77"):
        read_all(path)


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    write_csv(path, [user_row()])
    path.write_bytes(path.read_bytes() + b"\n\n")
    assert len(read_all(path)) == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b"username,email\n", "'id'"), (b"id,id\n1,2\n", "duplicate")],
)
def test_unusable_header_fails_on_enter(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(content)
    with pytest.raises(SpaazaInvalidRowError, match=problem):
        read_all(path)


def test_invalid_utf8_fails_naming_its_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [user_row()])
    path.write_bytes(path.read_bytes() + b"2,\xff\xfe\n")
    with pytest.raises(
        SpaazaInvalidRowError, match="task 77: the file is not valid UTF-8 at line 3"
    ):
        read_all(path)


def test_invalid_utf8_in_the_header_fails_whatever_the_row_setting(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(b"id,\xff\n1,x\n")
    with pytest.raises(SpaazaInvalidRowError, match="not valid UTF-8 at line 1"):
        read_all(path, on_invalid_row="skip")


def test_unknown_invalid_row_action_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_invalid_row"):
        UsersCsvReader(tmp_path / "u.csv", task_id=1, on_invalid_row="ignore", logger=LOGGER)


def test_file_is_closed_after_the_block(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [user_row()])
    with UsersCsvReader(path, task_id=1, logger=LOGGER) as reader:
        handle = reader._file
        assert handle is not None
    assert handle.closed


def test_records_validate_against_the_stream_schema(tmp_path: Path) -> None:
    rows = [user_row(id="1"), dict.fromkeys(USER_COLUMNS, "") | {"id": "2", "x": "y"}]
    path = write_csv(tmp_path / "u.csv", rows, header=[*USER_COLUMNS, "x"])
    with UsersCsvReader(path, task_id=1, logger=LOGGER) as reader:
        validator = Draft7Validator(
            users_json_schema(reader.extra_columns), format_checker=FormatChecker()
        )
        for record in reader:
            validator.validate(record)
    assert reader.rows == 2


def test_nul_bytes_are_kept_where_csv_rejects_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "_NEEDS_NUL_WORKAROUND", True)  # the Python 3.10 path
    header = [*USER_COLUMNS, "odd\x00name"]
    rows = [user_row(last_name="a\x00b", first_name="\x00") | {"odd\x00name": "x\x00"}]
    with UsersCsvReader(
        write_csv(tmp_path / "u.csv", rows, header=header), task_id=1, logger=LOGGER
    ) as reader:
        [record] = list(reader)
    assert reader.extra_columns == ["odd\x00name"]
    assert (record["last_name"], record["first_name"]) == ("a\x00b", "\x00")
    assert record["odd\x00name"] == "x\x00"


def test_bad_quoting_skips_one_row_and_reading_goes_on(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [user_row(id="1")])
    good = path.read_text().splitlines()[1]
    broken = '2,"quoted"then-text' + "," * (len(USER_COLUMNS) - 2)
    path.write_text(path.read_text() + broken + "\n" + "3" + good[1:] + "\n")
    with UsersCsvReader(path, task_id=1, on_invalid_row="skip", logger=LOGGER) as reader:
        ids = [record["id"] for record in reader]
    assert reader.skipped_rows == 1
    assert ids == [1, 3]


def test_a_row_without_an_id_is_invalid(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [user_row(id="1"), user_row(id=""), user_row(id="3")])
    with pytest.raises(SpaazaInvalidRowError, match="line 3: column 'id' is empty"):
        read_all(path)
    with UsersCsvReader(path, task_id=1, on_invalid_row="skip", logger=LOGGER) as reader:
        ids = [record["id"] for record in reader]
    assert ids == [1, 3]
    assert reader.skipped_rows == 1


def test_numbers_at_the_edge_of_a_double_and_signed_integers_are_valid(tmp_path: Path) -> None:
    row = user_row(recency="-7", frequency="+3", average_basket_value="1.5e308")
    (record,) = read_all(write_csv(tmp_path / "u.csv", [row]))
    assert record["recency"] == -7
    assert record["frequency"] == 3
    assert record["average_basket_value"] == Decimal("1.5e308")


def test_a_number_beyond_a_double_is_an_invalid_row_that_skip_leaves_out(tmp_path: Path) -> None:
    rows = [user_row(id="1", average_basket_value="1e999999"), user_row(id="2", recency="1_0")]
    rows.append(user_row(id="3"))
    with UsersCsvReader(
        write_csv(tmp_path / "u.csv", rows), task_id=77, logger=LOGGER, on_invalid_row="skip"
    ) as reader:
        assert [r["id"] for r in reader] == [3]
        assert reader.skipped_rows == 2


def numbered_rows(count: int) -> list[dict[str, str]]:
    """``count`` valid rows, ids 1.., created a minute apart, every fourth with a quoted value."""
    return [
        user_row(
            id=str(number),
            created_date=f"2024-05-01 {number // 60 % 24:02d}:{number % 60:02d}:00",
            address_streetname='Straat "1",\nGebouw B' if number % 4 == 0 else "Straat",
        )
        for number in range(1, count + 1)
    ]


def line_of_row(path: Path, row: int) -> int:
    """The first physical line of data row ``row`` (quoted values span lines)."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        for _ in range(row - 1):
            next(reader)
        return reader.line_num + 1


@pytest.mark.parametrize("block_bytes", [1 << 20, 100])
def test_invalid_utf8_is_found_on_its_exact_line_and_skip_leaves_out_that_row_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    monkeypatch.setattr(csv_lines, "BLOCK_BYTES", block_bytes)  # lines across blocks too
    path = write_csv(tmp_path / "u.csv", numbered_rows(200))
    line = line_of_row(path, 101)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b"Straat", b"Stra\xff\xfet", 1)
    path.write_bytes(b"".join(lines))
    for _ in range(3):  # the same line every time
        with pytest.raises(SpaazaInvalidRowError, match=f"not valid UTF-8 at line {line} "):
            read_all(path)
    with UsersCsvReader(path, task_id=7, on_invalid_row="skip", logger=LOGGER) as reader:
        ids = [record["id"] for record in reader]
    assert ids == [number for number in range(1, 201) if number != 101]
    assert (reader.skipped_rows, reader.skipped_lines) == (1, [line])
    assert reader.unvouched_from == "2024-05-01T01:41:00+00:00"  # row 101's created_date


@pytest.mark.parametrize("block_bytes", [1 << 20, 100, 5000])
def test_a_stray_quote_costs_its_own_line_not_the_rest_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    monkeypatch.setattr(csv_lines, "BLOCK_BYTES", block_bytes)
    rows = numbered_rows(200)
    rows[49] = {**rows[49], "first_name": '"Ann'}  # row 50, rendered below without quoting
    path = write_csv(tmp_path / "u.csv", rows)
    line = line_of_row(path, 50)
    text = path.read_text(encoding="utf-8").replace('"""Ann"', '"Ann', 1)
    path.write_text(text, encoding="utf-8")

    with pytest.raises(SpaazaInvalidRowError, match=f"line {line}: "):
        read_all(path)
    with UsersCsvReader(path, task_id=7, on_invalid_row="skip", logger=LOGGER) as reader:
        ids = [record["id"] for record in reader]
    assert ids == [number for number in range(1, 201) if number != 50]
    assert (reader.skipped_rows, reader.skipped_lines) == (1, [line])
    assert reader.unvouched_from == "2024-05-01T00:50:00+00:00"  # row 50's created_date


def test_a_quote_that_joins_more_than_the_kept_text_fails_even_in_skip_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_lines, "BLOCK_BYTES", 200)
    monkeypatch.setattr(csv_lines, "RESYNC_CHARS", 400)
    rows = [user_row(id=str(number)) for number in range(1, 60)]
    rows[9] = {**rows[9], "first_name": '"Ann'}
    path = write_csv(tmp_path / "u.csv", rows)
    path.write_text(path.read_text().replace('"""Ann"', '"Ann', 1))  # no quote after it
    with pytest.raises(SpaazaInvalidRowError, match="line 11: the CSV cannot be read from here"):
        read_all(path, on_invalid_row="skip")


def test_a_skipped_row_whose_date_cannot_be_read_vouches_for_nothing(tmp_path: Path) -> None:
    rows: list[Mapping[str, str] | Sequence[str]] = [user_row(id="1"), ["2", "short"]]
    rows.append(user_row(id="3"))
    with UsersCsvReader(
        write_csv(tmp_path / "u.csv", rows), task_id=7, on_invalid_row="skip", logger=LOGGER
    ) as reader:
        assert [record["id"] for record in reader] == [1, 3]
    assert reader.unvouched_from == ""
