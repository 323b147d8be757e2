"""The export's bytes for a given seed, population and selection never change.

The digests below were taken from the sandbox's export as it was before it was made faster
(each user generated and rendered cell by cell for every export). The faster export (users
generated with the same random draws, lines rendered once and reused across exports) must
write the very same bytes, on the first export of a sandbox and on every later one.
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from sandbox_client import ApiClient, segment_of

from tap_spaaza_users.sandbox.export import CsvDialect, ExportOptions, write_export
from tap_spaaza_users.sandbox.generator import COLUMNS, UserGenerator
from tap_spaaza_users.sandbox.lines import (
    CHUNK_USERS,
    LineBlock,
    RenderedLines,
    as_values,
    render_lines,
)
from tap_spaaza_users.sandbox.population import Population

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sandbox_client import SandboxFactory

    from tap_spaaza_users.sandbox import Sandbox

NOW = datetime(2026, 5, 26, 12, tzinfo=timezone.utc)


def _rule(field: str, field_type: str, operator: str, **operands: Any) -> dict[str, Any]:
    return {"field_name": field, "field_type": field_type, "operator": operator, **operands}


def _changes(sb: Sandbox) -> None:
    """Updates (inside and outside a window), deletions and added users."""
    sb.update_user(3, loyalty_status_name="Gold", first_name='Quote "me", please')
    sb.update_user(40, last_name="Line\nbreak", is_employee=True)
    sb.update_user(1999, created_date="2019-01-02 03:04:05")
    for user_id in (1, 2, 500, 501, 2000):
        sb.delete_user(user_id)
    sb.add_users(3, created_date=NOW - timedelta(days=2), visible_after_seconds=0)
    sb.add_users(2, created_date=NOW - timedelta(days=1), visible_after_seconds=3600)


def _dialect(sb: Sandbox) -> None:
    sb.set_csv_dialect(
        bom=True,
        crlf=True,
        booleans="yes_no",
        datetimes="iso_offset",
        column_order="shuffled",
        extra_columns=["favourite_colour"],
        missing_columns=["phone_number", "birthday"],
    )


def _dialect_booleans(sb: Sandbox) -> None:
    sb.set_csv_dialect(booleans="1_0", datetimes="iso_z")


def _changes_and_dialect(sb: Sandbox) -> None:
    _changes(sb)
    _dialect_booleans(sb)


def _faults(sb: Sandbox) -> None:
    sb.inject("malformed_rows", rows=[2, 9], problem="field_count")
    sb.inject("duplicate_rows", count=4, newer_by_seconds=90)


def _faults_bad_value(sb: Sandbox) -> None:
    sb.inject("malformed_rows", rows=[1, 100], problem="bad_value", column="created_date")
    sb.inject("gzip", mode="content-encoding")


def _nothing(_: Sandbox) -> None:
    pass


WINDOW = segment_of(
    _rule("created_date", "date", "is_between_date",
          start_date="2024-03-01T00:00:00Z", end_date="2025-02-01T00:00:00Z"),
)  # fmt: skip
GOLD_OR_EMPLOYEE = segment_of(
    _rule("loyalty_status_name", "keyword", "is", value="Gold"),
    _rule("is_employee", "boolean", "is", value=True),
    join="any",
)
RECENT_SUBSCRIBED = segment_of(
    _rule("created_date", "date", "relative_less_than", time_factor="month", time_amount=9),
    _rule("mailing_list_subscribed", "boolean", "is", value=True),
)

#: (seed, users, set-up, segment) -> sha256 of the file as the former export wrote it
CASES: dict[str, tuple[int, int, Callable[[Sandbox], None], dict[str, Any] | None, str]] = {
    "seed 1, all users": (
        1, 3000, _nothing, None,
        "66d3f0410115fb3e9958b8652a5b558bc70472a04c3b3a54b75802daee01f45e",
    ),
    "seed 7, changed users": (
        7, 2500, _changes, None,
        "ef1bbb06adb8edc70f6352f80d8dcca8e5e2223d27f21d5f341fa263d5cf52fb",
    ),
    "seed 7, changed users, a window": (
        7, 2500, _changes, WINDOW,
        "28a4010c5f6a0ac8f32118aef313134323ec0e7a6975745ba2bbc6d3e8032d0a",
    ),
    "seed 42, join any": (
        42, 2000, _nothing, GOLD_OR_EMPLOYEE,
        "0e2fefec4fd904c932290ab553b1dedd8747166806db6a27883a2cfdefae05cc",
    ),
    "seed 42, relative window and a rule": (
        42, 2000, _changes, RECENT_SUBSCRIBED,
        "672f706b670f27d35b6e0fc51c729a0c87bc84abaa7a7a904a87d0fe2b0b3234",
    ),
    "seed 3, every dialect option": (
        3, 1500, _dialect, None,
        "e419b01160a49f12319ba75cd2354f073c97313836bea0a30d0d21e35ef6df6e",
    ),
    "seed 3, booleans and dates, changed users": (
        3, 2500, _changes_and_dialect, WINDOW,
        "cad2396d5f4f95c62138cc1cdf0288f1cb901b09745a9859f4a875d22f36d300",
    ),
    "seed 5, malformed and repeated rows": (
        5, 1200, _faults, None,
        "744b4e173a79a7bbd8535271c8f1adceaaa326a7781d1e8724f142fcb6511c7c",
    ),
    "seed 5, bad values, gzip": (
        5, 1200, _faults_bad_value, None,
        "d05d3f7ad3b61322bea5c41d1220e209ab8b81c8e5e544c166662eaf6f59421d",
    ),
    "seed 11, a large population": (
        11, 20000, _nothing, None,
        "3c3e8889808b86dad4d5df02b80f56dc719eb3fbe11bd362bef380eaffdbcd2e",
    ),
}  # fmt: skip


def export_digest(api: ApiClient, segment: dict[str, Any] | None) -> str:
    """Export and return the sha256 of the file's content (decompressed if gzipped)."""
    content = api.export(segment).content
    if content.startswith(b"\x1f\x8b"):
        content = gzip.decompress(content)
    return hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_the_export_writes_the_same_bytes_as_before_first_and_later(
    sandbox_factory: SandboxFactory, case: str
) -> None:
    seed, users, set_up, segment, digest = CASES[case]
    sb = sandbox_factory(users=users, seed=seed, now=NOW)
    set_up(sb)
    api = ApiClient(sb)

    first = export_digest(api, segment)
    set_up_faults_again = set_up in (_faults, _faults_bad_value)
    if set_up_faults_again:  # a fault applies to one export only
        set_up(sb)
    second = export_digest(api, segment)

    assert first == digest, case
    assert second == digest, f"{case}: a later export differs from the first"


def _expected_lines(generator: UserGenerator, first: int, last: int) -> list[tuple[int, str]]:
    rows = (generator.row(user_id) for user_id in range(first, last + 1))
    return list(enumerate(render_lines(rows), start=first))


def test_stored_lines_equal_freshly_rendered_ones_for_any_range(tmp_path: Path) -> None:
    generator = UserGenerator(9, CHUNK_USERS * 2 + 10, 1_780_000_000)
    rendered = RenderedLines(generator, tmp_path)
    ranges = [(5, 20), (1, CHUNK_USERS * 2 + 10), (5, 20), (CHUNK_USERS - 3, CHUNK_USERS + 4)]
    try:
        for first, last in ranges:  # a part (not stored), all (stored), then parts again
            assert list(rendered.lines(first, last)) == _expected_lines(generator, first, last)
    finally:
        rendered.close()
    assert list(rendered.lines(1, 3)) == _expected_lines(generator, 1, 3)
    rendered.close()


def test_lines_are_still_rendered_where_they_cannot_be_stored(tmp_path: Path) -> None:
    generator = UserGenerator(9, 50, 1_780_000_000)
    rendered = RenderedLines(generator, tmp_path / "missing")
    assert list(rendered.lines(1, 50)) == _expected_lines(generator, 1, 50)
    assert list(rendered.lines(1, 50)) == _expected_lines(generator, 1, 50)


def test_a_rendered_line_reads_back_into_the_users_values() -> None:
    generator = UserGenerator(2, 3000, 1_780_000_000)
    values = [generator.row(user_id) for user_id in range(1, 3001)]
    assert any("\n" in cell for row in values for cell in row)  # quoted line breaks
    assert any('"' in cell for row in values for cell in row)  # doubled quotes
    for row, line in zip(values, render_lines(iter(values)), strict=True):
        assert as_values(line) == dict(zip(COLUMNS, row, strict=True))


def test_a_block_at_a_time_writes_the_same_file_as_a_row_at_a_time(tmp_path: Path) -> None:
    # Three chunks: users changed in the second; faults in the first and the third.
    population = Population(seed=4, count=CHUNK_USERS * 2 + 500, epoch=1_780_000_000)
    population.update(CHUNK_USERS + 7, {"first_name": "Changed"})
    population.delete(CHUNK_USERS + 9)
    population.add(2, NOW - timedelta(days=1), NOW, 0)
    overlay = population.snapshot()
    faulty = ExportOptions(
        dialect=CsvDialect(), seed=4, malformed_rows=(3, CHUNK_USERS * 2 + 20), duplicates=2
    )
    try:
        blocks = [item for item in population.blocks(overlay, NOW) if isinstance(item, LineBlock)]
        assert [block.first for block in blocks] == [1, CHUNK_USERS * 2 + 1]
        for options in (
            ExportOptions(dialect=CsvDialect(), seed=4),
            faulty,
            ExportOptions(dialect=CsvDialect(), seed=4, duplicates=3),
            ExportOptions(dialect=CsvDialect(bom=True), seed=4, gzip=True),
            ExportOptions(dialect=CsvDialect(crlf=True), seed=4),
        ):
            by_rows, by_blocks = tmp_path / "rows.csv", tmp_path / "blocks.csv"
            rows = write_export(by_rows, population.rows(overlay, NOW), options)
            written = write_export(by_blocks, population.blocks(overlay, NOW), options)
            content = _content(by_blocks)
            assert (written, content) == (rows, _content(by_rows)), options
            assert content.startswith(b"\xef\xbb\xbfid,") == options.dialect.bom
    finally:
        population.rendered.close()


def _content(path: Path) -> bytes:
    """Return a file's bytes, decompressed if gzipped (the gzip header names the file)."""
    data = path.read_bytes()
    return gzip.decompress(data) if data.startswith(b"\x1f\x8b") else data
