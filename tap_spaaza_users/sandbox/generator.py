"""Deterministic synthetic users: every column of the export, derived from (seed, id)."""

from __future__ import annotations

import random
import time

from tap_spaaza_users.contract import USER_COLUMNS

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
_DAY = 86400


def _ts(seconds: float) -> str:
    """Format epoch seconds as the CSV's UTC date-time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _bool(flag: bool) -> str:  # noqa: FBT001
    """Format a boolean the CSV's way."""
    return "true" if flag else "false"


def _chance(rnd: random.Random, probability: float) -> bool:
    """Return True with ``probability``."""
    return rnd.random() < probability


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

        Args:
            user_id: The user's id (base users are 1..count; added users follow).
            created: The created time (Unix seconds); defaults to the base spread.
        """
        rnd = random.Random(self.seed * 1_000_003 + user_id)  # noqa: S311 - synthetic data
        created = self.created_seconds(user_id) if created is None else created
        pick = rnd.choice
        first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
        country, language, town, region = pick(TOWNS)
        age_days = max(0, self.epoch - created) // _DAY
        recency, frequency, monetary = rnd.randint(1, 5), rnd.randint(1, 5), rnd.randint(1, 5)
        purchases = rnd.randint(0, 200)
        points = min(20_000, int(rnd.expovariate(1 / 1200)))  # most members Bronze/Silver
        tier = max((t for t in TIERS if t[2] <= points), key=lambda t: t[2])
        next_tier = next((t for t in TIERS if t[2] > points), None)
        reached = created + rnd.randint(0, max(1, age_days)) * _DAY // 2
        opted_in = _chance(rnd, 0.8)
        offered = _chance(rnd, 0.9)
        return [
            str(user_id),
            "M%08d" % user_id if _chance(rnd, 0.95) else "",  # noqa: UP031
            "user%d@example.com" % user_id,  # noqa: UP031
            first,
            last,
            pick(GENDERS),
            "%04d-%02d-%02d" % (rnd.randint(1950, 2008), rnd.randint(1, 12), rnd.randint(1, 28)),  # noqa: UP031
            country,
            language,
            "+31 6 %08d" % rnd.randint(0, 99_999_999) if _chance(rnd, 0.7) else "",  # noqa: UP031
            _ts(created),
            _ts(created + rnd.randint(0, max(1, age_days)) * _DAY // 3),
            pick(STREETS),
            str(rnd.randint(1, 400)),
            pick(EXTENSIONS),
            town,
            region,
            "%04d %s" % (rnd.randint(1000, 9999), "AB") if country == "NL" else "75001",  # noqa: UP031
            pick(STORES),
            _bool(_chance(rnd, 0.03)),
            "REF-%X" % rnd.getrandbits(24) if _chance(rnd, 0.5) else "",  # noqa: UP031
            str(recency),
            str(frequency),
            str(monetary),
            str(round((recency + frequency + monetary) / 3)),
            "%d.%02d" % (rnd.randint(5, 250), rnd.randint(0, 99)),  # noqa: UP031
            str(rnd.randint(0, 900)) if purchases else "",
            str(purchases),
            _bool(_chance(rnd, 0.6)),
            _bool(_chance(rnd, 0.7)),
            tier[0],
            str(tier[1]),
            str(points),
            str(next_tier[2] - points if next_tier else 0),
            "%d.%02d" % (points // 100, points % 100),  # noqa: UP031
            _ts(reached),
            _ts(reached + 365 * _DAY),
            str(points + rnd.randint(0, 300)),
            _bool(opted_in),
            _ts(created + rnd.randint(0, 30) * _DAY) if opted_in else "",
            _bool(_chance(rnd, 0.3)),
            _bool(offered),
            _bool(offered and _chance(rnd, 0.6)),
            _bool(_chance(rnd, 0.2)),
            _bool(_chance(rnd, 0.4)),
        ]
