"""A consistent-hash ring: each cell owns many points; a key belongs to the next point.

Why a ring with bounded loads (not jump hash, not plain rendezvous): when a cell joins,
only the keys whose next point is now one of its points move (about 1/(n+1) of them); when
a cell leaves, only its own keys move. Jump hash gives the same when cells are appended
but moves keys between unrelated cells when one in the middle leaves; rendezvous gives
the same movement but costs O(cells) per key (a billion hashes for 1,000,000 tenants over
1,000 cells). A lookup here is one hash and one binary search, in the router as in the
control plane, so unknown tenants land where placement would put them.
Pure: no I/O.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Iterator, Sequence

POINTS_PER_CELL = 128  # more points, smoother shares; 128 keeps a cell within ~10% of 1/n


MIX = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: spreads CRC's neighbouring values
MASK = (1 << 64) - 1


def key_hash(key: str) -> int:
    """A stable 64-bit hash (never Python's `hash`, which differs between processes):
    CRC-32 (fast, in every language and proxy) spread by Fibonacci multiplication."""
    return (zlib.crc32(key.encode()) * MIX) & MASK


class Ring:
    def __init__(self, cells: Sequence[str], points: int = POINTS_PER_CELL) -> None:
        self.cells = tuple(sorted(set(cells)))
        pairs = sorted(
            (key_hash(f"{cell}#{i}"), cell) for cell in self.cells for i in range(points)
        )
        self._hashes = [h for h, _ in pairs]
        self._owners = [c for _, c in pairs]
        # the hash space cut into 8 buckets a point: most hold no point, and every key in
        # such a bucket belongs to the next point's cell (one list index, no search)
        bits = max(4, (8 * len(pairs) - 1).bit_length())
        self.shift = 64 - bits
        self.buckets = _buckets(self._hashes, self._owners, self.shift, 1 << bits)

    def points(self) -> tuple[list[int], list[str]]:
        """The ring's sorted point hashes and the cell owning each."""
        return self._hashes, self._owners

    def __bool__(self) -> bool:
        return bool(self.cells)

    def owner(self, key: str) -> str | None:
        if not self._hashes:
            return None
        hashed = key_hash(key)
        found = self.buckets[hashed >> self.shift]
        if found is not None:
            return found
        return self._owners[bisect_right(self._hashes, hashed) % len(self._owners)]

    def walk(self, key: str) -> Iterator[str]:
        """Every cell once, in ring order from the key's point: the owner first."""
        if not self._hashes:
            return
        start = bisect_right(self._hashes, key_hash(key))
        seen: set[str] = set()
        size = len(self._owners)
        for offset in range(size):
            cell = self._owners[(start + offset) % size]
            if cell not in seen:
                seen.add(cell)
                yield cell
                if len(seen) == len(self.cells):
                    return


def _buckets(hashes: list[int], owners: list[str], shift: int, size: int) -> list[str | None]:
    """Per bucket of the hash space: the cell owning every key in it (the next point's),
    or None where a point falls inside the bucket (then the owner takes a search)."""
    table: list[str | None] = [None] * size
    previous = -1
    for hashed, owner in zip(hashes, owners, strict=True):
        bucket = hashed >> shift
        if bucket > previous + 1:
            table[previous + 1 : bucket] = [owner] * (bucket - previous - 1)
        previous = bucket
    if owners and previous + 1 < size:  # past the last point: the ring wraps to the first
        table[previous + 1 :] = [owners[0]] * (size - previous - 1)
    return table
