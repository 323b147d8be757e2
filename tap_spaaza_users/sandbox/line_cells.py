"""The fixed cells of base users' CSV lines: formatted, quoted and encoded once per process.

``base_lines`` draws each user's values and picks their cells here instead of formatting
them: a draw's cells are indexed the way ``random`` draws (see ``drawn``). The tables stay
small (a few thousand cells): on a busy machine a larger table costs more in cache misses
than formatting its cells per user.
"""

from __future__ import annotations

import csv
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from tap_spaaza_users.sandbox.generator import (
    EXTENSIONS,
    FIRST_NAMES,
    GENDERS,
    LAST_NAMES,
    STORES,
    STREETS,
    TIERS,
    TOWNS,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The generator's constants (see ``UserGenerator.row``): how many values each draw picks from.
DAY = 86400
POINTS_RATE = 1 / 1200
MAX_POINTS = 20_000
YEARS, MONTHS, MONTH_DAYS = 59, 12, 28
SCORES, PURCHASES = 5, 201
PHONES, POSTAL_CODES, HOUSES, REFERRAL_BITS = 100_000_000, 9000, 400, 24
EUROS, CENTS, SPENT, EXTRA_POINTS, JOIN_DAYS = 246, 100, 901, 301, 31
TRUE, FALSE = b"true,", b"false,"
#: A draw's table: the cell of each value below ``n``, then None up to ``2 ** n.bit_length()``.
Drawn = tuple[bytes | None, ...]


class _Line:
    """Keeps the line ``csv.writer`` writes."""

    def __init__(self) -> None:
        """Start empty."""
        self.text = ""

    def write(self, text: str) -> None:
        """Keep ``text``."""
        self.text = text


def quoted(value: str) -> str:
    """Return ``value`` as ``csv.writer`` writes it inside a row (quoted where it must be)."""
    line = _Line()
    csv.writer(line, lineterminator="\n").writerow([value, ""])
    return line.text[: -len(",\n")]


def drawn(cells: Iterable[str], end: str = ",") -> Drawn:
    """Return each cell followed by ``end`` in UTF-8, indexed by a draw of ``n.bit_length()`` bits.

    ``random`` draws an index below ``n`` as ``getrandbits(n.bit_length())``, again while it is
    ``n`` or more: such a draw maps to None.
    """
    values = tuple((cell + end).encode() for cell in cells)
    return values + (None,) * ((1 << len(values).bit_length()) - len(values))


def score_places(weight: int) -> tuple[int | None, ...]:
    """Return a score's ``weight`` times each value, indexed by a draw as ``drawn`` does."""
    places = tuple(score * weight for score in range(SCORES))
    return places + (None,) * ((1 << SCORES.bit_length()) - SCORES)


def bits_of(table: Drawn) -> int:
    """Return how many random bits one draw from a ``drawn`` table takes."""
    return len(table).bit_length() - 1


class Cells(NamedTuple):
    """The cells that depend only on the generator's lists."""

    first_names: Drawn
    last_names: Drawn
    genders: Drawn
    streets: Drawn
    extensions: Drawn
    stores: Drawn
    years: Drawn
    months: Drawn
    month_days: Drawn
    houses: Drawn
    euros: Drawn
    cents: Drawn
    spent: Drawn
    countries: tuple[bytes, ...]
    places: tuple[bytes, ...]
    dutch: tuple[bool, ...]
    numbers: tuple[bytes, ...]
    scores: tuple[bytes, ...]
    member: tuple[bytes, ...]
    minutes: tuple[bytes, ...]
    seconds: tuple[bytes, ...]
    points: tuple[bytes, ...]


@cache
def cells() -> Cells:
    """Return the fixed cells (built once per process, in a few milliseconds)."""
    return Cells(
        first_names=drawn(map(quoted, FIRST_NAMES)),
        last_names=drawn(map(quoted, LAST_NAMES)),
        genders=drawn(map(quoted, GENDERS)),
        streets=drawn(map(quoted, STREETS)),
        extensions=drawn(map(quoted, EXTENSIONS)),
        stores=drawn(map(quoted, STORES)),
        years=drawn((f"{1950 + year}-" for year in range(YEARS)), ""),
        months=drawn((f"{month:02d}-" for month in range(1, MONTHS + 1)), ""),
        month_days=drawn(f"{day:02d}" for day in range(1, MONTH_DAYS + 1)),
        houses=drawn(str(house) for house in range(1, HOUSES + 1)),
        euros=drawn((f"{euros}." for euros in range(5, 5 + EUROS)), ""),
        cents=drawn(f"{cents:02d}" for cents in range(CENTS)),
        spent=drawn(str(spent) for spent in range(SPENT)),
        countries=tuple(f"{quoted(c)},{quoted(lang)},".encode() for c, lang, _, _ in TOWNS),
        places=tuple(f"{quoted(town)},{quoted(region)},".encode() for _, _, town, region in TOWNS),
        dutch=tuple(country == "NL" for country, _, _, _ in TOWNS),
        numbers=tuple(f"{n},".encode() for n in range(PURCHASES)),
        scores=tuple(
            f"{r},{f},{m},{round((r + f + m) / 3)},".encode()
            for r in range(1, SCORES + 1)
            for f in range(1, SCORES + 1)
            for m in range(1, SCORES + 1)
        ),
        member=tuple(("M" + "0" * max(0, 8 - width)).encode() for width in range(30)),
        minutes=tuple(f"{minute // 60:02d}:{minute % 60:02d}:".encode() for minute in range(1440)),
        seconds=tuple(f"{second:02d},".encode() for second in range(60)),
        points=_point_cells(),
    )


def _point_cells() -> tuple[bytes, ...]:
    """Return the tier name, level, points, points to the next tier and balance cells.

    Indexed by the points (0 to ``MAX_POINTS``) and built in that order: the many users with
    few points read theirs from the few cache lines of the first cells.
    """
    cells: list[bytes] = []
    for tier, (name, level, needed) in enumerate(TIERS):
        head = f"{quoted(name)},{level},".encode()
        top = tier + 1 == len(TIERS)
        below = MAX_POINTS + 1 if top else TIERS[tier + 1][2]
        cells.extend(
            b"%s%d,%d,%d.%02d," % (head, points, 0 if top else below - points, *divmod(points, 100))
            for points in range(needed, below)
        )
    return tuple(cells)
