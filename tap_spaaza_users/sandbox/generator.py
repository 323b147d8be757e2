"""Deterministic synthetic users: every column of the export, derived from (seed, id)."""

from __future__ import annotations

import random
import time
from bisect import bisect_right
from math import log as _log
from typing import TYPE_CHECKING

from tap_spaaza_users.contract import USER_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Callable

COLUMNS: tuple[str, ...] = tuple(USER_COLUMNS)

#: How far back the base population's created dates reach (about three years).
SPAN_SECONDS = 3 * 365 * 24 * 3600

FIRST_NAMES = (
    "Zoë", "Łukasz", "François", "Anna", "Jan", "Sophie", "Daan", "Emma", "Noah", "Mia",
    "Søren", "José", "Ana María", "Björn", "Chloé", "Mehmet", "Aiko", "Wei", " Lotte ", "Ïris",
)  # fmt: skip
LAST_NAMES = (
    "de Vries", "Jansen", "O'Connor", "Müller", "Nowak", "García", "Dubois", "van den Berg",
    "Smith, Jr.", '"The Boss" Bakker', "Kowalski", " Peeters ", "Øster", "Żółć", "Nguyễn",
)  # fmt: skip
STREETS = (
    "Keizersgracht", "Damrak", "Rue de Rivoli", "Main Street", "Hauptstraße", "ul. Długa",
    "Calle Mayor", "Oudegracht", 'Plaza "Sol"', "Straat 1\nGebouw B", "Avenue, Suite 4",
)  # fmt: skip
TOWNS = (
    ("NL", "nl", "Amsterdam", "Noord-Holland"),
    ("NL", "nl", "Utrecht", "Utrecht"),
    ("BE", "nl", "Gent", "Oost-Vlaanderen"),
    ("FR", "fr", "Paris", "Île-de-France"),
    ("DE", "de", "München", "Bayern"),
    ("PL", "pl", "Kraków", "Małopolskie"),
    ("ES", "es", "Sevilla", "Andalucía"),
    ("GB", "en", "London", ""),
    ("US", "en", "New York", "NY"),
)
STORES = ("Amsterdam Centraal", "Utrecht Hoog Catharijne", "Webshop", "Gent Zuid", "")
GENDERS = ("female", "male", "other", "")
EXTENSIONS = ("", "", "", "", "A", "bis", "2-hoog")
#: (name, level id, points needed to reach it)
TIERS = (("Bronze", 1, 0), ("Silver", 2, 500), ("Gold", 3, 2000), ("Platinum", 4, 5000))
_TIER_POINTS = [points for _, _, points in TIERS]
_DAY = 86400
#: ``random.expovariate``'s rate for the loyalty points (a mean of 1,200)
_POINTS_RATE = 1 / 1200


#: "YYYY-MM-DD " of each day number seen (a few thousand days; cleared if it ever grows large)
_DATES: dict[int, str] = {}
_MAX_DATES = 100_000


def _ts(seconds: int) -> str:
    """Format whole epoch seconds as the CSV's UTC date-time (``%Y-%m-%d %H:%M:%S``)."""
    day, rest = divmod(seconds, _DAY)
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) >= _MAX_DATES:
            _DATES.clear()
        date = _DATES[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * _DAY))
    return date + "%02d:%02d:%02d" % (rest // 3600, rest // 60 % 60, rest % 60)  # noqa: UP031


def _bool(flag: bool) -> str:  # noqa: FBT001
    """Format a boolean the CSV's way."""
    return "true" if flag else "false"


def _below(bits: Callable[[int], int], n: int) -> int:
    """Return a draw in ``range(n)``, exactly as ``random.Random`` draws one (n < 2**32).

    ``randint``, ``randrange`` and ``choice`` all come down to this rejection loop over
    ``getrandbits(n.bit_length())``; calling it directly skips three Python frames per draw.
    """
    k = n.bit_length()
    value = bits(k)
    while value >= n:
        value = bits(k)
    return value


class UserGenerator:
    """Produces base users 1..N on the fly; nothing is held in memory."""

    def __init__(self, seed: int, count: int, epoch: float) -> None:
        """Users are spread over the ~3 years before ``epoch`` (Unix seconds, whole)."""
        self.seed = seed
        self.count = count
        self.epoch = int(epoch)

    def created_seconds(self, user_id: int) -> int:
        """Return the created time of base user ``user_id``: increasing, some share a second."""
        slot = user_id - 1 if user_id % 7 == 0 else user_id
        return self.epoch - SPAN_SECONDS + (slot * SPAN_SECONDS) // (self.count + 1)

    def row(self, user_id: int, created: int | None = None) -> list[str]:
        """Return the CSV values of user ``user_id`` in column order.

        The values are a fixed function of (seed, user id, created): every draw below takes
        the same outputs of the user's own Mersenne Twister that ``random.Random``'s
        ``randint``, ``choice`` and ``expovariate`` would take, without their Python layers.

        Args:
            user_id: The user's id (base users are 1..count; added users follow).
            created: The created time (Unix seconds); defaults to the base spread.
        """
        rnd = random.Random(self.seed * 1_000_003 + user_id)  # noqa: S311 - synthetic data
        bits, chance = rnd.getrandbits, rnd.random
        created = self.created_seconds(user_id) if created is None else created
        first = FIRST_NAMES[_below(bits, len(FIRST_NAMES))]
        last = LAST_NAMES[_below(bits, len(LAST_NAMES))]
        country, language, town, region = TOWNS[_below(bits, len(TOWNS))]
        age_days = max(0, self.epoch - created) // _DAY
        recency, frequency, monetary = 1 + _below(bits, 5), 1 + _below(bits, 5), 1 + _below(bits, 5)
        purchases = _below(bits, 201)
        points = min(20_000, int(-_log(1.0 - chance()) / _POINTS_RATE))  # most Bronze/Silver
        reached_tiers = bisect_right(_TIER_POINTS, points)  # Bronze needs 0: at least 1
        tier = TIERS[reached_tiers - 1]
        next_tier = TIERS[reached_tiers] if reached_tiers < len(TIERS) else None
        reached = created + _below(bits, max(1, age_days) + 1) * _DAY // 2
        opted_in = chance() < 0.8  # noqa: PLR2004
        offered = chance() < 0.9  # noqa: PLR2004
        return [
            str(user_id),
            "M%08d" % user_id if chance() < 0.95 else "",  # noqa: PLR2004, UP031
            "user%d@example.com" % user_id,  # noqa: UP031
            first,
            last,
            GENDERS[_below(bits, len(GENDERS))],
            "%04d-%02d-%02d"  # noqa: UP031
            % (1950 + _below(bits, 59), 1 + _below(bits, 12), 1 + _below(bits, 28)),
            country,
            language,
            "+31 6 %08d" % _below(bits, 100_000_000) if chance() < 0.7 else "",  # noqa: PLR2004, UP031
            _ts(created),
            _ts(created + _below(bits, max(1, age_days) + 1) * _DAY // 3),
            STREETS[_below(bits, len(STREETS))],
            str(1 + _below(bits, 400)),
            EXTENSIONS[_below(bits, len(EXTENSIONS))],
            town,
            region,
            "%04d AB" % (1000 + _below(bits, 9000)) if country == "NL" else "75001",  # noqa: UP031
            STORES[_below(bits, len(STORES))],
            _bool(chance() < 0.03),  # noqa: PLR2004
            "REF-%X" % bits(24) if chance() < 0.5 else "",  # noqa: PLR2004, UP031
            str(recency),
            str(frequency),
            str(monetary),
            str(round((recency + frequency + monetary) / 3)),
            "%d.%02d" % (5 + _below(bits, 246), _below(bits, 100)),  # noqa: UP031
            str(_below(bits, 901)) if purchases else "",
            str(purchases),
            _bool(chance() < 0.6),  # noqa: PLR2004
            _bool(chance() < 0.7),  # noqa: PLR2004
            tier[0],
            str(tier[1]),
            str(points),
            str(next_tier[2] - points if next_tier else 0),
            "%d.%02d" % (points // 100, points % 100),  # noqa: UP031
            _ts(reached),
            _ts(reached + 365 * _DAY),
            str(points + _below(bits, 301)),
            _bool(opted_in),
            _ts(created + _below(bits, 31) * _DAY) if opted_in else "",
            _bool(chance() < 0.3),  # noqa: PLR2004
            _bool(offered),
            _bool(offered and chance() < 0.6),  # noqa: PLR2004
            _bool(chance() < 0.2),  # noqa: PLR2004
            _bool(chance() < 0.4),  # noqa: PLR2004
        ]
