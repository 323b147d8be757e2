"""Base users' CSV lines, drawn and formatted in one pass: what ``lines`` stores and reuses.

``UserGenerator.row`` defines each user. ``BaseLines`` writes the UTF-8 bytes of the very line
``csv.writer`` writes for that row, about twice as fast: one Mersenne Twister reseeded per user
(the state ``random.Random(key)`` starts from), each draw inlined as ``random``'s rejection loop
over ``getrandbits`` and mapped straight to its encoded CSV cell, every fixed cell formatted,
quoted and encoded once per process, and one join per line. The line goes to the export file
and to the store as it is, with nothing to encode. Tests compare both for many seeds, epochs
and ids.
"""

from __future__ import annotations

import csv
import random
import time
from bisect import bisect_right
from functools import cache
from math import floor, log
from typing import TYPE_CHECKING, NamedTuple

from tap_spaaza_users.sandbox.generator import (
    EXTENSIONS,
    FIRST_NAMES,
    GENDERS,
    LAST_NAMES,
    SPAN_SECONDS,
    STORES,
    STREETS,
    TIERS,
    TOWNS,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_spaaza_users.sandbox.generator import UserGenerator

#: The generator's constants (see ``UserGenerator.row``): how many values each draw picks from.
_DAY = 86400
_POINTS_RATE = 1 / 1200
_MAX_POINTS = 20_000
_YEARS, _MONTHS, _MONTH_DAYS = 59, 12, 28
_SCORES, _PURCHASES = 5, 201
_PHONES, _POSTAL_CODES, _HOUSES, _REFERRAL_BITS = 100_000_000, 9000, 400, 24
_EUROS, _CENTS, _SPENT, _EXTRA_POINTS, _JOIN_DAYS = 246, 100, 901, 301, 31
_TRUE, _FALSE = b"true,", b"false,"
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


def _score_places(weight: int) -> tuple[int | None, ...]:
    """Return a score's ``weight`` times each value, indexed by a draw as ``drawn`` does."""
    places = tuple(score * weight for score in range(_SCORES))
    return places + (None,) * ((1 << _SCORES.bit_length()) - _SCORES)


def bits_of(table: Drawn) -> int:
    """Return how many random bits one draw from a ``drawn`` table takes."""
    return len(table).bit_length() - 1


class _Tables(NamedTuple):
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


@cache
def _tables() -> _Tables:
    """Return the fixed cells (built once per process, in a few milliseconds)."""
    return _Tables(
        first_names=drawn(map(quoted, FIRST_NAMES)),
        last_names=drawn(map(quoted, LAST_NAMES)),
        genders=drawn(map(quoted, GENDERS)),
        streets=drawn(map(quoted, STREETS)),
        extensions=drawn(map(quoted, EXTENSIONS)),
        stores=drawn(map(quoted, STORES)),
        years=drawn((f"{1950 + year}-" for year in range(_YEARS)), ""),
        months=drawn((f"{month:02d}-" for month in range(1, _MONTHS + 1)), ""),
        month_days=drawn(f"{day:02d}" for day in range(1, _MONTH_DAYS + 1)),
        houses=drawn(str(house) for house in range(1, _HOUSES + 1)),
        euros=drawn((f"{euros}." for euros in range(5, 5 + _EUROS)), ""),
        cents=drawn(f"{cents:02d}" for cents in range(_CENTS)),
        spent=drawn(str(spent) for spent in range(_SPENT)),
        countries=tuple(f"{quoted(c)},{quoted(lang)},".encode() for c, lang, _, _ in TOWNS),
        places=tuple(f"{quoted(town)},{quoted(region)},".encode() for _, _, town, region in TOWNS),
        dutch=tuple(country == "NL" for country, _, _, _ in TOWNS),
        numbers=tuple(f"{n},".encode() for n in range(_PURCHASES)),
        scores=tuple(
            f"{r},{f},{m},{round((r + f + m) / 3)},".encode()
            for r in range(1, _SCORES + 1)
            for f in range(1, _SCORES + 1)
            for m in range(1, _SCORES + 1)
        ),
        member=tuple(("M" + "0" * max(0, 8 - width)).encode() for width in range(30)),
        minutes=tuple(f"{minute // 60:02d}:{minute % 60:02d}:".encode() for minute in range(1440)),
        seconds=tuple(f"{second:02d},".encode() for second in range(60)),
    )


#: points -> the tier name, level, points, points to the next tier and balance cells
_POINT_CELLS: dict[int, bytes] = {}
_TIER_POINTS = [needed for _, _, needed in TIERS]
_TIER_CELLS = [f"{quoted(name)},{level}," for name, level, _ in TIERS]


def _point_cells(points: int) -> bytes:
    """Return (and keep) the loyalty cells of ``points``."""
    reached = bisect_right(_TIER_POINTS, points)
    missing = TIERS[reached][2] - points if reached < len(TIERS) else 0
    text = f"{_TIER_CELLS[reached - 1]}{points},{missing},{points // 100}.{points % 100:02d},"
    cells = _POINT_CELLS[points] = text.encode()
    return cells


class BaseLines:
    """Renders the base users' lines of one generator (seed, count, epoch)."""

    def __init__(self, generator: UserGenerator) -> None:
        """Prepare the dates the generator's users can hold."""
        self._generator = generator
        epoch = generator.epoch
        first_day = (epoch - SPAN_SECONDS) // _DAY - 1
        last_day = (epoch + 367 * _DAY) // _DAY + 1
        #: every time in ``render`` counts seconds from the start of this table's first day
        self._base = first_day * _DAY
        self._days = tuple(
            time.strftime("%Y-%m-%d ", time.gmtime(day * _DAY)).encode()
            for day in range(first_day, last_day + 1)
        )
        #: (draws below, their bits) of the spread of a user created ``index`` days before epoch
        self._spreads = tuple(
            (max(1, age) + 1, (max(1, age) + 1).bit_length())
            for age in range(SPAN_SECONDS // _DAY + 1)
        )

    def render(self, first: int, last: int) -> list[bytes]:  # noqa: C901, PLR0912, PLR0915
        """Return the UTF-8 lines of base users ``first..last``, each ending in a line feed.

        Each draw takes the user's random numbers where ``UserGenerator.row`` takes them.
        """
        t = _tables()
        first_names, last_names, genders, streets = (
            t.first_names, t.last_names, t.genders, t.streets
        )  # fmt: skip
        extensions, stores, countries, places = t.extensions, t.stores, t.countries, t.places
        years, months, month_days, houses = t.years, t.months, t.month_days, t.houses
        euros, cents, spent_cells, numbers = t.euros, t.cents, t.spent, t.numbers
        rfm, member, minutes, seconds = t.scores, t.member, t.minutes, t.seconds
        dutch, days, spreads = t.dutch, self._days, self._spreads
        point_cells, point_cell = _POINT_CELLS, _point_cells
        first_bits, last_bits = bits_of(first_names), bits_of(last_names)
        gender_bits, street_bits = bits_of(genders), bits_of(streets)
        extension_bits, store_bits = bits_of(extensions), bits_of(stores)
        year_bits, month_bits, day_bits = bits_of(years), bits_of(months), bits_of(month_days)
        house_bits, euro_bits, cent_bits = bits_of(houses), bits_of(euros), bits_of(cents)
        spent_bits = bits_of(spent_cells)
        towns, town_bits = len(TOWNS), len(TOWNS).bit_length()
        score_bits = _SCORES.bit_length()
        purchases_n, purchases_bits = _PURCHASES, _PURCHASES.bit_length()
        phones, phone_bits = _PHONES, _PHONES.bit_length()
        codes, code_bits = _POSTAL_CODES, _POSTAL_CODES.bit_length()
        extras, extra_bits = _EXTRA_POINTS, _EXTRA_POINTS.bit_length()
        joins, join_bits = _JOIN_DAYS, _JOIN_DAYS.bit_length()
        referral_bits, max_points, rate, log_ = _REFERRAL_BITS, _MAX_POINTS, _POINTS_RATE, log
        floor_ = floor
        generator = self._generator
        count1, span, one_day = generator.count + 1, SPAN_SECONDS, _DAY
        one_year, minute = 365, 60
        minutes_a_day = _DAY // minute
        half_day, third_day = minutes_a_day // 2, minutes_a_day // 3  # in minutes
        epoch = generator.epoch - self._base
        offset = epoch - span
        key = generator.seed * 1_000_003
        rnd = random.Random()  # noqa: S311 - synthetic data
        reseed = super(random.Random, rnd).seed  # what random.Random(key) does to its state
        bits, chance = rnd.getrandbits, rnd.random
        true, false = _TRUE, _FALSE
        true_true, true_false, false_true, false_false = (
            true + true,
            true + false,
            false + true,
            false + false,
        )
        out: list[bytes] = []
        # each score drawn as its place in the rfm cells (recency * 25 + frequency * 5 + monetary)
        recencies, frequencies, monetaries = (_score_places(weight) for weight in (25, 5, 1))
        append = out.append
        for user_id in range(first, last + 1):
            reseed(key + user_id)
            created = offset + (user_id - 1 if user_id % 7 == 0 else user_id) * span // count1
            first_name = first_names[bits(first_bits)]
            while first_name is None:
                first_name = first_names[bits(first_bits)]
            last_name = last_names[bits(last_bits)]
            while last_name is None:
                last_name = last_names[bits(last_bits)]
            town = bits(town_bits)
            while town >= towns:
                town = bits(town_bits)
            # the user's other times lie whole minutes after created: one seconds cell for all
            created_minute = created // minute
            second = seconds[created % minute]
            created_day = created_minute // minutes_a_day
            created_clock = minutes[created_minute % minutes_a_day]
            spread, spread_bits = spreads[(epoch - created) // one_day]
            recency = recencies[bits(score_bits)]
            while recency is None:
                recency = recencies[bits(score_bits)]
            frequency = frequencies[bits(score_bits)]
            while frequency is None:
                frequency = frequencies[bits(score_bits)]
            monetary = monetaries[bits(score_bits)]
            while monetary is None:
                monetary = monetaries[bits(score_bits)]
            purchases = bits(purchases_bits)
            while purchases >= purchases_n:
                purchases = bits(purchases_bits)
            points = floor_(-log_(1.0 - chance()) / rate)  # int() of a positive float
            if points > max_points:  # noqa: PLR1730 - min() is a call per user
                points = max_points
            draw = bits(spread_bits)
            while draw >= spread:
                draw = bits(spread_bits)
            reached = created_minute + draw * half_day
            opted_in = chance() < 0.8  # noqa: PLR2004 - the generator's odds
            offered = chance() < 0.9  # noqa: PLR2004
            ident = b"%d" % user_id
            if chance() < 0.95:  # noqa: PLR2004
                member_prefix, member_id = member[len(ident)], ident
            else:
                member_prefix, member_id = b"", b""
            gender = genders[bits(gender_bits)]
            while gender is None:
                gender = genders[bits(gender_bits)]
            year = years[bits(year_bits)]
            while year is None:
                year = years[bits(year_bits)]
            month = months[bits(month_bits)]
            while month is None:
                month = months[bits(month_bits)]
            month_day = month_days[bits(day_bits)]
            while month_day is None:
                month_day = month_days[bits(day_bits)]
            if chance() < 0.7:  # noqa: PLR2004
                phone = bits(phone_bits)
                while phone >= phones:
                    phone = bits(phone_bits)
                phone_cell = b"+31 6 %08d," % phone
            else:
                phone_cell = b","
            draw = bits(spread_bits)
            while draw >= spread:
                draw = bits(spread_bits)
            modified = created_minute + draw * third_day
            street = streets[bits(street_bits)]
            while street is None:
                street = streets[bits(street_bits)]
            house = houses[bits(house_bits)]
            while house is None:
                house = houses[bits(house_bits)]
            extension = extensions[bits(extension_bits)]
            while extension is None:
                extension = extensions[bits(extension_bits)]
            if dutch[town]:
                code = bits(code_bits)
                while code >= codes:
                    code = bits(code_bits)
                postal = b"%04d AB," % (1000 + code)
            else:
                postal = b"75001,"
            store = stores[bits(store_bits)]
            while store is None:
                store = stores[bits(store_bits)]
            employee = true if chance() < 0.03 else false  # noqa: PLR2004
            referral = b"REF-%X," % bits(referral_bits) if chance() < 0.5 else b","  # noqa: PLR2004
            euro = euros[bits(euro_bits)]
            while euro is None:
                euro = euros[bits(euro_bits)]
            cent = cents[bits(cent_bits)]
            while cent is None:
                cent = cents[bits(cent_bits)]
            if purchases:
                spent = spent_cells[bits(spent_bits)]
                while spent is None:
                    spent = spent_cells[bits(spent_bits)]
            else:
                spent = b","
            # two flags in one cell: the first chance() is the first flag's
            if chance() < 0.6:  # noqa: PLR2004
                flags = true_true if chance() < 0.7 else true_false  # noqa: PLR2004
            else:
                flags = false_true if chance() < 0.7 else false_false  # noqa: PLR2004
            extra = bits(extra_bits)
            while extra >= extras:
                extra = bits(extra_bits)
            if opted_in:
                joined = bits(join_bits)
                while joined >= joins:
                    joined = bits(join_bits)
                opted, join_day = true, days[created_day + joined]
                join_minute, join_second = created_clock, second
            else:
                opted, join_day, join_minute, join_second = false, b"", b"", b","
            reached_day = reached // minutes_a_day
            reached_minute = minutes[reached % minutes_a_day]
            modified_day = modified // minutes_a_day
            # two joins of at most 30 cells: CPython builds a longer display as a growing list
            # fmt: off
            append(b"".join((
                ident, b",", member_prefix, member_id, b",user", ident, b"@example.com,",
                first_name, last_name, gender, year, month, month_day, countries[town], phone_cell,
                days[created_day], created_clock, second,
                days[modified_day], minutes[modified % minutes_a_day], second,
                street, b"".join((
                house, extension, places[town], postal, store, employee, referral,
                rfm[recency + frequency + monetary], euro, cent, spent,
                numbers[purchases], flags, point_cells.get(points) or point_cell(points),
                days[reached_day], reached_minute, second,
                days[reached_day + one_year], reached_minute, second,
                b"%d," % (points + extra), opted, join_day, join_minute, join_second,
                true if chance() < 0.3 else false,  # noqa: PLR2004
                true if offered else false,
                true if offered and chance() < 0.6 else false,  # noqa: PLR2004
                true if chance() < 0.2 else false,  # noqa: PLR2004
                b"true\n" if chance() < 0.4 else b"false\n",  # noqa: PLR2004
            )))))
            # fmt: on
        return out
