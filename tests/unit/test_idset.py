"""The compact id set used to emit each user once per sync."""

from __future__ import annotations

import random

from tap_spaaza_users.windows import BITMAP_LIMIT, IdSet


def test_each_id_is_new_once_whatever_its_size() -> None:
    ids = [0, 1, 7, 8, 255, 1_000_003, BITMAP_LIMIT - 1, BITMAP_LIMIT, 10**12, -5]
    seen = IdSet()

    assert [seen.add_new(i) for i in ids] == [True] * len(ids)
    assert [seen.add_new(i) for i in ids] == [False] * len(ids)
    assert all(i in seen for i in ids)
    assert 2 not in seen
    assert 10**12 + 1 not in seen


def test_agrees_with_a_plain_set_on_random_ids() -> None:
    rng = random.Random(7)  # noqa: S311 - test data, not cryptography
    seen, reference = IdSet(), set()
    for _ in range(20_000):
        user_id = rng.randrange(50_000)
        assert seen.add_new(user_id) == (user_id not in reference)
        reference.add(user_id)


def test_a_million_ids_take_a_bitmap_not_a_set() -> None:
    seen = IdSet()
    for user_id in range(1, 1_000_001):
        seen.add_new(user_id)

    assert len(seen._bits) < 2 * 1_000_001 // 8 + 1
    assert seen._others == set()
