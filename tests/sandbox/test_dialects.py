"""CSV dialect variants: BOM, CRLF, booleans, date-times, column order, extra/missing columns."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any, cast

import pytest

from tap_spaaza_users.contract import USER_COLUMNS

if TYPE_CHECKING:
    from sandbox_client import ApiClient


def _text(api: ApiClient) -> str:
    return cast("str", api.export().content.decode("utf-8"))


def _rows(api: ApiClient) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(api).removeprefix("\ufeff"))))


def test_default_dialect_is_plain_utf8_lf_true_false_space_dates(small_api: ApiClient) -> None:
    raw = small_api.export().content
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" not in raw.split(b"\n", 1)[0] + b"\n"
    row = _rows(small_api)[0]
    assert row["is_employee"] in {"true", "false"}
    assert len(row["created_date"]) == 19
    assert row["created_date"][10] == " "


def test_bom_and_crlf(small_api: ApiClient) -> None:
    small_api.sb.set_csv_dialect(bom=True, crlf=True)
    raw = small_api.export().content
    assert raw.startswith(b"\xef\xbb\xbfid,")
    assert raw.split(b"\n", 1)[0].endswith(b"\r")


@pytest.mark.parametrize(
    ("variant", "values"),
    [("1_0", {"1", "0"}), ("True_False", {"True", "False"}), ("yes_no", {"yes", "no"})],
)
def test_boolean_variants(small_api: ApiClient, variant: str, values: set[str]) -> None:
    small_api.sb.set_csv_dialect(booleans=variant)
    rows = _rows(small_api)
    assert {r["mailing_list_subscribed"] for r in rows} == values
    assert {r["overall"] for r in rows} <= {"1", "2", "3", "4", "5"}


@pytest.mark.parametrize(("variant", "suffix"), [("iso_z", "Z"), ("iso_offset", "+00:00")])
def test_datetime_variants(small_api: ApiClient, variant: str, suffix: str) -> None:
    expected = small_api.sb.users()[0]
    small_api.sb.set_csv_dialect(datetimes=variant)
    row = _rows(small_api)[0]
    assert row["created_date"] == expected["created_date"].replace(" ", "T") + suffix
    assert row["birthday"] == expected["birthday"]


def test_shuffled_columns_keep_every_value(small_api: ApiClient) -> None:
    expected = small_api.sb.users()
    small_api.sb.set_csv_dialect(column_order="shuffled")
    text = _text(small_api)
    header = text.split("\n", 1)[0].split(",")
    assert header != list(USER_COLUMNS)
    assert sorted(header) == sorted(USER_COLUMNS)
    assert _rows(small_api) == expected


def test_extra_and_missing_columns(small_api: ApiClient) -> None:
    small_api.sb.set_csv_dialect(extra_columns=["segment_score"], missing_columns=["phone_number"])
    rows = _rows(small_api)
    assert "phone_number" not in rows[0]
    assert rows[0]["segment_score"] == "extra segment_score 1"
    assert list(rows[0])[-1] == "segment_score"


def test_dialect_persists_until_reset(small_api: ApiClient) -> None:
    small_api.sb.set_csv_dialect(booleans="1_0")
    small_api.sb.set_csv_dialect(bom=True)
    assert small_api.export().content.startswith(b"\xef\xbb\xbf")
    assert {r["is_employee"] for r in _rows(small_api)} <= {"1", "0"}
    small_api.sb.reset()
    assert {r["is_employee"] for r in _rows(small_api)} <= {"true", "false"}


@pytest.mark.parametrize(
    "options",
    [{"booleans": "Y_N"}, {"datetimes": "epoch"}, {"column_order": "reversed"},
     {"missing_columns": ["nope"]}, {"extra_columns": ["id"]}, {"delimiter": ";"}],
)  # fmt: skip
def test_unknown_variants_are_refused(small_api: ApiClient, options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        small_api.sb.set_csv_dialect(**options)
