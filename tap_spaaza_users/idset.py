"""The ids emitted in one sync, kept compactly: a bitmap for ordinary ids, a set for the rest."""

from __future__ import annotations

#: Ids below this live in the bitmap (at most 16 MB); others, if any, in a plain set.
BITMAP_LIMIT = 1 << 27


class IdSet:
    """Which user ids a sync has emitted, at about one bit per id instead of ~60 bytes.

    Spaaza user ids are positive integers that grow with sign-ups, so a bitmap as long as
    the largest id keeps a million users in 125 kB where a set of ints would take ~60 MB.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._bits = bytearray()
        self._others: set[int] = set()

    def add_new(self, user_id: int) -> bool:
        """Add an id.

        Args:
            user_id: The user's id.

        Returns:
            True when the id was not in the set yet.
        """
        if 0 <= user_id < BITMAP_LIMIT:
            index, mask = user_id >> 3, 1 << (user_id & 7)
            bits = self._bits
            if index >= len(bits):
                bits.extend(bytes(max(index + 1, 2 * len(bits)) - len(bits)))
            if bits[index] & mask:
                return False
            bits[index] |= mask
            return True
        if user_id in self._others:
            return False
        self._others.add(user_id)
        return True

    def bitmap(self) -> bytearray:
        """The bitmap itself, for a loop that tests and sets bits inline (see ``grow``).

        Bit ``id & 7`` of byte ``id >> 3`` is set when ``id`` (below BITMAP_LIMIT) was added.
        """
        return self._bits

    def grow(self, index: int) -> int:
        """Lengthen the bitmap (in place) to hold byte ``index``; return its new length."""
        bits = self._bits
        if index >= len(bits):
            bits.extend(bytes(max(index + 1, 2 * len(bits)) - len(bits)))
        return len(bits)

    def __contains__(self, user_id: object) -> bool:
        """Whether an id was added."""
        if isinstance(user_id, int) and 0 <= user_id < BITMAP_LIMIT:
            index = user_id >> 3
            return index < len(self._bits) and bool(self._bits[index] & (1 << (user_id & 7)))
        return user_id in self._others

    def copy(self) -> IdSet:
        """A copy of the set as it is now (to go back to, see ``restore``)."""
        duplicate = IdSet()
        duplicate._bits = bytearray(self._bits)
        duplicate._others = set(self._others)
        return duplicate

    def restore(self, earlier: IdSet) -> None:
        """Go back to ``earlier``, a copy taken before (the ids added since are forgotten)."""
        self._bits = bytearray(earlier._bits)
        self._others = set(earlier._others)
