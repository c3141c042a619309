"""Counting a text field's values per slice without sorting: the values seen before, addressed by 8 or 16 hash bits.

::

    table = HashTable.of(hashes, names)          # the distinct hashes seen (and their values), or None
    counts = table.count(h, valid, at)           # (slices x values) counts, or None: a value not in the table

A field's values mostly recur from batch to batch. Once a batch has been counted by sorting, its distinct hashes
make a table addressed by one byte (or two) of the hash, chosen so that no two of them share a slot. A later batch
is then counted with a few passes over its rows: each row's slot is a view of its hash (no arithmetic), the row's
hash must equal the one of the table at that slot (every non-null row is checked: a value not in the table, or a
collision on the slot, sends the batch back to sorting), and one ``np.bincount`` of ``slice · slots + slot``
counts every slice at once. Counts are of 64-bit hashes, exactly as when sorting: the same profile, bit for bit.
"""

from __future__ import annotations

import numpy as np

from streams.profiles.layout import Layout

__all__ = ["HashTable", "tables"]

_KNOWN_MAX = 4096  # a field with more distinct values than this is counted by sorting
#: field name -> its table (or None: no table fits); shared by every spec, as the rows are checked against it
tables: dict[str, HashTable | None] = {}


class HashTable:
    """Known distinct hashes of a field (ascending, with their values), addressed by ``width`` bits at ``lane``."""

    __slots__ = ("by_name", "by_slot", "hashes", "hits", "lane", "misses", "names", "slots", "width")

    def __init__(self, hashes: np.ndarray, names: list[str], width: int, lane: int, slots: np.ndarray) -> None:
        self.hashes, self.names, self.width, self.lane, self.slots = hashes, names, width, lane, slots
        size = 1 << width
        # an empty slot holds a hash whose own slot is another one: no row's hash equals it
        self.by_slot = np.zeros(size, dtype=np.uint64)
        _lane(self.by_slot, width, lane)[:] = np.arange(size) ^ 1
        self.by_slot[slots] = hashes
        self.hits = self.misses = 0
        self.by_name = sorted(range(len(names)), key=names.__getitem__)  # the values' positions, by value

    def learn(self, hashes: np.ndarray, names: list[str]) -> HashTable | None:
        """The table of these values and the known ones, after a batch that held values not in this table
        (None: give up on tables for the field, when misses outnumber the batches the table counted)."""
        if self.misses > 4 + self.hits // 16:
            return None
        known = dict(zip(self.hashes.tolist(), self.names, strict=True))
        known.update(zip(hashes.tolist(), names, strict=True))
        ordered = sorted(known)
        got = HashTable.of(np.asarray(ordered, dtype=np.uint64), [known[h] for h in ordered])
        if got is not None:
            got.hits, got.misses = self.hits, self.misses + 1
        return got

    @classmethod
    def of(cls, hashes: np.ndarray, names: list[str]) -> HashTable | None:
        """A table of these distinct hashes (ascending), on the first lane of 8, else 16 bits, where none collide."""
        if len(hashes) > _KNOWN_MAX:
            return None
        for width in (8, 16):
            if len(hashes) > (1 << width) // 2:
                continue
            for lane in range(64 // width):
                slots = _lane(hashes, width, lane)
                if len(np.unique(slots)) == len(hashes):
                    return cls(hashes, names, width, lane, slots.astype(np.int64))
        return None

    def count(self, hashes: np.ndarray, valid: np.ndarray | None, nulls: np.ndarray, at: Layout) -> np.ndarray | None:
        """Per slice (rows) and known value (columns) the rows that hold it; None if a row holds another value.

        ``nulls``: per slice, the null rows (their hash is counted at its slot, and taken off again here)."""
        slot = _lane(hashes, self.width, self.lane)
        wrong = self.by_slot[slot] != hashes
        if valid is not None:
            wrong &= valid
        if wrong.any():
            return None
        self.hits += 1
        size = 1 << self.width
        key = at.keys(size, slot)
        table = np.bincount(key, minlength=(at.n + 1) * size)[: at.n * size].reshape(at.n, size)
        if valid is not None:
            first = np.flatnonzero(~valid)[:1]
            if len(first):
                table[:, int(slot[first[0]])] -= nulls  # every null row has the same hash
        return table[:, self.slots]


def _lane(hashes: np.ndarray, width: int, lane: int) -> np.ndarray:
    """Bits ``width * lane ..`` of each hash, as a strided view (little-endian words)."""
    view = np.ascontiguousarray(hashes).view(np.uint8 if width == 8 else np.uint16)
    return view[lane :: 64 // width]
