"""The fast line renderer writes, for every base user, the line csv.writer writes for its row.

It writes the line in UTF-8, the bytes the export file holds. ``UserGenerator.row`` is the
definition of a user (each value drawn the way ``random`` draws it); ``BaseLines`` draws and
formats the same user in one pass. The two must agree byte for byte, whatever the seed, the
epoch, the population's size and the user's id.
"""

from __future__ import annotations

import random
from bisect import bisect_right

import pytest

from tap_spaaza_users.sandbox.base_lines import BaseLines
from tap_spaaza_users.sandbox.generator import TIERS, UserGenerator
from tap_spaaza_users.sandbox.line_cells import MAX_POINTS, cells, drawn, quoted
from tap_spaaza_users.sandbox.lines import render_lines

EPOCH = 1_780_000_000


def _by_rows(generator: UserGenerator, first: int, last: int) -> list[bytes]:
    rows = (generator.row(user_id) for user_id in range(first, last + 1))
    return [line.encode() for line in render_lines(rows)]


@pytest.mark.parametrize(
    ("seed", "count", "epoch"),
    [
        (1, 3000, EPOCH),
        (7, 2500, 1_700_000_123),
        (42, 1200, 0),  # an epoch before which the users' dates lie before 1970
        (-3, 500, EPOCH),  # a negative seed: random seeds with its absolute value
        (5000, 800, EPOCH),  # seed * 1,000,003 + id beyond 32 bits: a two-word MT key
        (2**70, 300, EPOCH + 43_199),  # a very long key, an epoch that is not midnight
    ],
)
def test_every_line_equals_the_generators_row_as_csv_writer_writes_it(
    seed: int, count: int, epoch: int
) -> None:
    generator = UserGenerator(seed, count, epoch)
    assert BaseLines(generator).render(1, count) == _by_rows(generator, 1, count)


def test_users_created_in_the_last_day_and_ids_of_nine_digits_too() -> None:
    # The last users of a large population were created less than a day before the epoch
    # (one draw below 2 for the dates that depend on the user's age); ids from 100,000,000
    # have a member number longer than its 8-digit padding.
    generator = UserGenerator(11, 100_000_050, EPOCH)
    lines = BaseLines(generator)
    for first, last in ((99_999_900, 100_000_050), (1, 40), (49_999_990, 50_000_010)):
        assert lines.render(first, last) == _by_rows(generator, first, last), (first, last)
    assert any(b",M100000001," in line for line in lines.render(100_000_001, 100_000_001))


@pytest.mark.parametrize(
    ("user_id", "cell"),
    [
        (5132, b",REF-644,"),  # a referral code below 4096: no high hex digits
        (20, b",+31 6 00789705,"),  # a phone number with leading zeros
    ],
)
def test_short_referral_codes_and_phone_numbers_with_leading_zeros(
    user_id: int, cell: bytes
) -> None:
    generator = UserGenerator(1, 6000, EPOCH)
    line = BaseLines(generator).render(user_id, user_id)
    assert line == _by_rows(generator, user_id, user_id)
    assert cell in line[0]


def test_loyalty_cells_at_every_tier_boundary_and_at_the_points_cap() -> None:
    # As UserGenerator.row writes them: the tier reached, its level, the points, the points
    # missing to the next tier (0 in the top tier) and the balance in euros.
    needed = [points for _, _, points in TIERS]
    table = cells().points
    assert len(table) == MAX_POINTS + 1
    for points in {0, 1, 99, 100, 499, 500, 1999, 2000, 4999, 5000, 12345, MAX_POINTS}:
        name, level, _ = TIERS[bisect_right(needed, points) - 1]
        above = [goal for goal in needed if goal > points]
        row = [name, str(level), str(points), str(above[0] - points if above else 0)]
        row += [f"{points // 100}.{points % 100:02d}", ""]
        assert table[points] == render_lines(iter([row]))[0][:-1].encode(), points


def test_a_quoted_cell_is_what_csv_writer_writes_and_drawn_tables_reject_like_random() -> None:
    assert quoted('"The Boss" Bakker') == '"""The Boss"" Bakker"'
    assert quoted("Straat 1\nGebouw B") == '"Straat 1\nGebouw B"'
    assert quoted("Smith, Jr.") == '"Smith, Jr."'
    assert quoted(" Lotte ") == " Lotte "
    table = drawn(["a", "b", "c", "ü"])  # random draws below 4 with 3 bits, as randrange does
    assert table == (b"a,", b"b,", b"c,", "ü,".encode(), None, None, None, None)
    rnd, copy = random.Random(9), random.Random(9)  # noqa: S311 - reproducible draws
    for _ in range(200):
        value = table[rnd.getrandbits(3)]
        while value is None:
            value = table[rnd.getrandbits(3)]
        assert value == ("abcü"[copy.randrange(4)] + ",").encode()
