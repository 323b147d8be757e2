"""Base users' CSV lines, drawn and formatted in one pass: what ``lines`` stores and reuses.

``UserGenerator.row`` defines each user. ``BaseLines`` writes the UTF-8 bytes of the very line
``csv.writer`` writes for that row, about twice as fast: one Mersenne Twister reseeded per user
(the state ``random.Random(key)`` starts from), each draw inlined as ``random``'s rejection loop
over ``getrandbits`` and mapped straight to its encoded CSV cell, every fixed cell formatted,
quoted and encoded once per process (``line_cells``), and the line joined from its cells. It goes to
the export file and to the store as it is, with nothing to encode. Tests compare both for many
seeds, epochs and ids.
"""

from __future__ import annotations

import random
import time
from math import floor, log
from typing import TYPE_CHECKING

from tap_spaaza_users.sandbox.generator import SPAN_SECONDS, TOWNS
from tap_spaaza_users.sandbox.line_cells import (
    DAY,
    EXTRA_POINTS,
    FALSE,
    JOIN_DAYS,
    MAX_POINTS,
    PHONES,
    POINTS_RATE,
    POSTAL_CODES,
    PURCHASES,
    REFERRAL_BITS,
    SCORES,
    TRUE,
    bits_of,
    cells,
    score_places,
)

if TYPE_CHECKING:
    from tap_spaaza_users.sandbox.generator import UserGenerator


class BaseLines:
    """Renders the base users' lines of one generator (seed, count, epoch)."""

    def __init__(self, generator: UserGenerator) -> None:
        """Prepare the dates the generator's users can hold."""
        self._generator = generator
        epoch = generator.epoch
        first_day = (epoch - SPAN_SECONDS) // DAY - 1
        last_day = (epoch + 367 * DAY) // DAY + 1
        #: every time in ``render`` counts seconds from the start of this table's first day
        self._base = first_day * DAY
        self._days = tuple(
            time.strftime("%Y-%m-%d ", time.gmtime(day * DAY)).encode()
            for day in range(first_day, last_day + 1)
        )
        #: (draws below, their bits) of the spread of a user created ``index`` days before epoch
        self._spreads = tuple(
            (max(1, age) + 1, (max(1, age) + 1).bit_length())
            for age in range(SPAN_SECONDS // DAY + 1)
        )

    def render(self, first: int, last: int) -> list[bytes]:  # noqa: C901, PLR0912, PLR0915
        """Return the UTF-8 lines of base users ``first..last``, each ending in a line feed.

        Each draw takes the user's random numbers where ``UserGenerator.row`` takes them.
        """
        t = cells()
        first_names, last_names, genders, streets = (
            t.first_names, t.last_names, t.genders, t.streets
        )  # fmt: skip
        extensions, stores, countries, places = t.extensions, t.stores, t.countries, t.places
        years, months, month_days, houses = t.years, t.months, t.month_days, t.houses
        euros, cents, spent_cells, numbers = t.euros, t.cents, t.spent, t.numbers
        rfm, member, minutes, seconds = t.scores, t.member, t.minutes, t.seconds
        dutch, days, spreads = t.dutch, self._days, self._spreads
        point_cells = t.points
        first_bits, last_bits = bits_of(first_names), bits_of(last_names)
        gender_bits, street_bits = bits_of(genders), bits_of(streets)
        extension_bits, store_bits = bits_of(extensions), bits_of(stores)
        year_bits, month_bits, day_bits = bits_of(years), bits_of(months), bits_of(month_days)
        house_bits, euro_bits, cent_bits = bits_of(houses), bits_of(euros), bits_of(cents)
        spent_bits = bits_of(spent_cells)
        towns, town_bits = len(TOWNS), len(TOWNS).bit_length()
        score_bits = SCORES.bit_length()
        purchases_n, purchases_bits = PURCHASES, PURCHASES.bit_length()
        phones, phone_bits = PHONES, PHONES.bit_length()
        codes, code_bits = POSTAL_CODES, POSTAL_CODES.bit_length()
        extras, extra_bits = EXTRA_POINTS, EXTRA_POINTS.bit_length()
        joins, join_bits = JOIN_DAYS, JOIN_DAYS.bit_length()
        referral_bits, max_points, rate, log_ = REFERRAL_BITS, MAX_POINTS, POINTS_RATE, log
        floor_ = floor
        generator = self._generator
        count1, span, one_day = generator.count + 1, SPAN_SECONDS, DAY
        one_year, minute = 365, 60
        minutes_a_day = DAY // minute
        half_day, third_day = minutes_a_day // 2, minutes_a_day // 3  # in minutes
        epoch = generator.epoch - self._base
        offset = epoch - span
        key = generator.seed * 1_000_003
        rnd = random.Random()  # noqa: S311 - synthetic data
        reseed = super(random.Random, rnd).seed  # what random.Random(key) does to its state
        bits, chance = rnd.getrandbits, rnd.random
        true, false = TRUE, FALSE
        true_true, true_false, false_true, false_false = (
            true + true,
            true + false,
            false + true,
            false + false,
        )
        out: list[bytes] = []
        # each score drawn as its place in the rfm cells (recency * 25 + frequency * 5 + monetary)
        recencies, frequencies, monetaries = (score_places(weight) for weight in (25, 5, 1))
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
                numbers[purchases], flags, point_cells[points],
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
