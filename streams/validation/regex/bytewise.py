"""Fixed-width patterns checked byte by byte in numpy; the rows are located only when a byte is wrong.

For a pattern anchored at both ends whose atoms are ASCII classes or literals repeated a fixed
number of times (``^[0-9a-f]{8}-[0-9a-f]{4}-...$``, ``^r-[0-9]{9}$``), ``c.str.contains(pattern)``
is: ``c`` has exactly ``n`` bytes, each in the set of its position. A non-ASCII character has bytes
>= 0x80, in no set, so it never passes; ``$`` is the end of the text, so a trailing newline fails
on the length. :class:`ByteCheck` splits this in two:

* in the fused pass, :meth:`ByteCheck.expr` gives the rows' bytes as ``Array(UInt8, n)`` (rows of
  another length, and nulls, carry a filler that passes, so the array has no nulls and reaches
  numpy without a copy);
* after it, :meth:`ByteCheck.fails` tests every byte against the ranges of its position: per range
  ``(x - lo) mod 256 <= hi - lo``, over blocks of rows of about 128 KB against the ranges tiled to
  the block (numpy's broadcasting over rows of ``n`` bytes pays a call per row; a flat block does
  not). A block whose bytes all pass costs no more; otherwise its wrong bytes give the rows
  (position // n). Wrong lengths fail; null stays null (a pass).

Polars' per-row work (a regex call, or ``arr.eval``/``arr.sum`` over the byte arrays of
:mod:`streams.validation.regex.strategies`) costs ~70 ns a row; this costs ~25 ns a row for a
UUID. Single-threaded, 100k rows: the UUID pattern 7.3 ms (byte-array fast path) / 8.2 ms (regex)
-> 2.7 ms. It is used where it beats the fast path (:func:`bytewise`): patterns with positions
outside the most common set (the fast path reads those one by one), from ``MIN_ROWS`` rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from streams.validation.regex.parser import parse
from streams.validation.regex.strategies import _compiles, char_ranges

__all__ = ["MIN_ROWS", "ByteCheck", "bytewise"]

MIN_ROWS = 16384  # below this many rows the fast path or the regex is as cheap
MAX_WIDTH = 512
MAX_RANGES = 4  # ranges of a position's set (each costs three passes over the bytes)
BLOCK_BYTES = 1 << 17  # the bytes tested at once (fits in a core's cache)


@dataclass(frozen=True, slots=True)
class ByteCheck:
    """``^...$`` over ``width`` ASCII positions; position ``p`` holds a byte of one of the ranges
    ``[lows[r][p], lows[r][p] + spans[r][p]]`` (positions with fewer ranges repeat their last)."""

    width: int
    lows: tuple[tuple[int, ...], ...]
    spans: tuple[tuple[int, ...], ...]
    filler: str  # ``width`` bytes that match

    def expr(self, c: pl.Expr) -> pl.Expr:
        """The rows' bytes as ``Array(UInt8, width)``, for the pass (the filler where the length is
        not ``width`` or the value is null)."""
        fixed = pl.when(c.str.len_bytes() == self.width).then(c).otherwise(pl.lit(self.filler))
        return fixed.cast(pl.Binary).bin.reinterpret(dtype=pl.Array(pl.UInt8, self.width))

    def fails(self, column: pl.Series, data: pl.Series) -> pl.Series:
        """The failure mask of ``column`` (True: no match; null: null) from the pass's ``data``."""
        mask = column.str.len_bytes().ne(self.width)
        if not len(column):
            return mask
        flat = data.to_numpy().reshape(-1)
        lows, spans = _tiles(self)
        step = lows.shape[1]
        shifted = np.empty(step, dtype=np.uint8)
        good = np.empty(step, dtype=np.bool_)
        test = np.empty(step, dtype=np.bool_)
        wrong: list[np.ndarray] = []
        for start in range(0, flat.shape[0], step):
            x = flat[start : start + step]
            m = x.shape[0]
            for r in range(lows.shape[0]):
                np.subtract(x, lows[r, :m], out=shifted[:m])
                np.less_equal(shifted[:m], spans[r, :m], out=good[:m] if r == 0 else test[:m])
                if r:
                    np.logical_or(good[:m], test[:m], out=good[:m])
            if not good[:m].all():
                wrong.append((start + np.flatnonzero(~good[:m])) // self.width)
        if not wrong:
            return mask
        return mask.scatter(np.unique(np.concatenate(wrong)), True)


@functools.lru_cache(maxsize=64)
def _tiles(check: ByteCheck) -> tuple[np.ndarray, np.ndarray]:
    """The ranges tiled over a block of whole rows: ``(lows, spans)``, one row per range."""
    rows = max(1, BLOCK_BYTES // check.width)
    lows = np.tile(np.array(check.lows, dtype=np.uint8), rows)
    spans = np.tile(np.array(check.spans, dtype=np.uint8), rows)
    return lows, spans


@functools.lru_cache(maxsize=256)
def bytewise(pattern: str) -> ByteCheck | None:
    """The byte check of ``pattern``, or None when it is not a fixed-width ``^...$`` pattern of
    ASCII classes and literals with some position outside the most common set (only literals:
    an equality is cheaper; a single set: the fast path is as cheap)."""
    parsed = parse(pattern)
    if parsed is None or not parsed.end or not _compiles(pattern):
        return None
    positions: list[frozenset[int]] = []
    for atom in parsed.atoms:
        if atom.negated or atom.high != atom.low:
            return None
        positions += [atom.chars] * atom.low
    if len(set(positions)) < 2 or len(positions) > MAX_WIDTH or all(len(s) == 1 for s in positions):
        return None
    if any(max(s) >= 0x80 for s in positions):  # the parser only takes ASCII; kept as a guard
        return None
    ranges = [tuple(char_ranges(s)) for s in positions]
    count = max(len(r) for r in ranges)
    if count > MAX_RANGES:
        return None
    padded = [r + (r[-1],) * (count - len(r)) for r in ranges]
    lows = tuple(tuple(r[i][0] for r in padded) for i in range(count))
    spans = tuple(tuple(r[i][1] - r[i][0] for r in padded) for i in range(count))
    return ByteCheck(len(positions), lows, spans, "".join(chr(min(s)) for s in positions))
