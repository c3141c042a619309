"""The strategies of the regex fast path: exact polars expressions for a parsed pattern.

See :mod:`streams.validation.regex` for the strategies and when each is used.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from streams.validation.regex.parser import Atom, Pattern, parse

__all__ = ["FAST_MIN_ROWS", "FAST_MIN_ROWS_OTHERS", "FastPath", "char_ranges", "fast_contains", "strategy"]

MAX_WIDTH = 512  # widest fixed-width pattern reinterpreted as bytes
MAX_OTHERS = 8  # positions read one by one (outside the most common set)
MAX_RANGES = 8  # ranges (or single characters) per set
MAX_EXCLUDED = 16  # characters excluded by a negated class
MAX_EXPANSIONS = 4  # fixed-width checks per pattern (combinations of repetition counts)
Builder = Callable[[pl.Expr], pl.Expr]
#: Batch heights below which the byte-array strategies cost more than the regex (a fixed
#: ~0.1-0.3 ms a batch; measured crossovers: 2-8k rows for one set of bytes, 10-20k rows
#: when other positions are read one by one, e.g. the dashes of a UUID).
FAST_MIN_ROWS = 4096
FAST_MIN_ROWS_OTHERS = 16384
#: With more than one position in ``OTHERS_SHARE`` outside the common set, the regex is cheaper
#: than the byte arrays at every size (single-threaded, 100k rows: ``^dev-[0-9a-f]{6}$`` 2.9 ms
#: regex / 3.6 ms bytes, ``^[A-Z]{2}-[0-9]{6}$`` 2.6 / 3.7, ``^ab-[0-9]{5}$`` 2.5 / 2.7; below
#: it the bytes win: ``^r-[0-9]{9}$`` 3.0 / 2.2, ``^[0-9]{3}-[0-9]{2}-[0-9]{4}$`` 3.1 / 2.3, the
#: UUID pattern 8.2 / 7.6): such a fast path is used only when the batch height is unknown.
OTHERS_SHARE = 4
NEVER = 1 << 62
SLICE_BYTES = 4 << 20  # the byte arrays of a slice of rows stay below this size
SLICE_ROWS = 1 << 16  # but slices have at least this many rows (each costs ~0.3 ms)


@dataclass(frozen=True, slots=True)
class FastPath:
    build: Builder
    min_rows: int = 0  # below this many rows the regex is cheaper (the result is the same)
    width: int = 0  # bytes a row of the byte arrays this strategy builds (0: none)


def fast_contains(column: pl.Expr, pattern: str, rows: int | None = None) -> pl.Expr | None:
    """``column.str.contains(pattern)`` without a regex, or None (use the regex).

    ``column`` must be of dtype String. ``rows``, when known, is a power of two with the
    batch height in ``[rows, 2 * rows)``: strategies that only pay off on larger batches
    are skipped below their ``min_rows``, and on large ones the byte arrays are built slice
    by slice (a few MB each): a single array of tens of MB costs ~3x more (page faults).
    """
    fast = strategy(pattern)
    if fast is None or (rows is not None and rows < fast.min_rows):
        return None
    if rows is None or not fast.width:
        return fast.build(column)
    length = max(SLICE_ROWS, 1 << ((SLICE_BYTES // fast.width).bit_length() - 1))
    parts = [fast.build(column.slice(offset, length)) for offset in range(0, 2 * rows, length)]
    while len(parts) > 1:  # a balanced tree of appends
        pairs = zip(parts[::2], parts[1::2], strict=False)
        parts = [a.append(b) for a, b in pairs] + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


@functools.lru_cache(maxsize=256)
def strategy(pattern: str) -> FastPath | None:
    """How ``pattern`` is evaluated without a regex (None: it is not)."""
    parsed = parse(pattern)
    if parsed is None or not _compiles(pattern):
        return None
    atoms = _normalize(parsed)
    if not atoms:
        return _empty(parsed.end)
    if all(not a.negated and a.high is not None for a in atoms):
        return _widths(atoms, parsed.end)
    if len(atoms) == 1 and atoms[0].negated and len(atoms[0].chars) <= MAX_EXCLUDED:
        return _negated(atoms[0], parsed.end)
    return None


def _widths(atoms: list[Atom], end: bool) -> FastPath | None:
    """Positive atoms with bounded repetition: one fixed-width check per combination of
    repetition counts (at most ``MAX_EXPANSIONS``), any of which may match."""
    choices = [range(a.low, (a.high if a.high is not None else a.low) + 1) for a in atoms]
    if math.prod(len(r) for r in choices) > MAX_EXPANSIONS:
        return None
    paths: list[FastPath] = []
    for counts in itertools.product(*choices):
        positions = [a.chars for a, n in zip(atoms, counts, strict=True) for _ in range(n)]
        if len(positions) > MAX_WIDTH or any(len(char_ranges(s)) > MAX_RANGES for s in positions):
            return None
        path = _fixed(positions, end) if positions else _empty(end)
        if path is None:
            return None
        paths.append(path)
    if len(paths) == 1:
        return paths[0]
    builds = [p.build for p in paths]
    return FastPath(  # null only where c is null
        lambda c: pl.any_horizontal([build(c) for build in builds]),
        max(p.min_rows for p in paths),
        max(p.width for p in paths),
    )


def _compiles(pattern: str) -> bool:
    try:
        pl.Series("s", [""], dtype=pl.String).str.contains(pattern)
    except Exception:
        return False
    return True


def _normalize(parsed: Pattern) -> list[Atom]:
    """Merge repeated atoms over the same set; without ``$``, cut the last atom to its minimum
    (a prefix match with more repetitions contains one with fewer)."""
    atoms: list[Atom] = []
    for atom in parsed.atoms:
        if atom.high == 0:
            continue
        if atoms and (atoms[-1].chars, atoms[-1].negated) == (atom.chars, atom.negated):
            last = atoms.pop()
            high = None if last.high is None or atom.high is None else last.high + atom.high
            atom = Atom(atom.chars, atom.negated, last.low + atom.low, high)
        atoms.append(atom)
    while not parsed.end and atoms:
        last = atoms.pop()
        if last.low:
            atoms.append(Atom(last.chars, last.negated, last.low, last.low))
            break
    return atoms


def _empty(end: bool) -> FastPath:
    def build(c: pl.Expr) -> pl.Expr:
        n = c.str.len_bytes()
        return n.eq(0) if end else n.ge(0)  # null stays null

    return FastPath(build)


def char_ranges(chars: frozenset[int]) -> list[tuple[int, int]]:
    """The code points of ``chars`` as sorted, disjoint, inclusive ``(low, high)`` runs."""
    out: list[tuple[int, int]] = []
    for code in sorted(chars):
        if out and out[-1][1] == code - 1:
            out[-1] = (out[-1][0], code)
        else:
            out.append((code, code))
    return out


def _member(x: pl.Expr, chars: frozenset[int]) -> pl.Expr:
    """``x`` (bytes) is one of ``chars``."""
    tests = [x.eq(lo) if lo == hi else x.ge(lo).and_(x.le(hi)) for lo, hi in char_ranges(chars)]
    return functools.reduce(operator.or_, tests)


def _outside(x: pl.Expr, chars: frozenset[int]) -> pl.Expr:
    """``x`` (bytes) is none of ``chars`` (cheaper than negating :func:`_member`)."""
    tests = [x.ne(lo) if lo == hi else x.lt(lo).or_(x.gt(hi)) for lo, hi in char_ranges(chars)]
    return functools.reduce(operator.and_, tests)


def _fixed(positions: list[frozenset[int]], end: bool) -> FastPath | None:
    n = len(positions)
    if all(len(s) == 1 for s in positions):
        text = "".join(chr(min(s)) for s in positions)
        return FastPath((lambda c: c.eq(text)) if end else (lambda c: c.str.starts_with(text)))
    counts = Counter(positions)
    for common in sorted(counts, key=lambda s: (-counts[s], positions.index(s))):
        others = [(p, s) for p, s in enumerate(positions) if s != common]
        if len(others) <= MAX_OTHERS and all(s <= common or not s & common for _, s in others):
            break
    else:
        return None
    outside = sum(1 for _, s in others if not s & common)

    def build(c: pl.Expr) -> pl.Expr:
        raw = c.cast(pl.Binary)
        data = (raw if end else raw.bin.head(n)).bin.reinterpret(dtype=pl.Array(pl.UInt8, n))
        # null where the length is wrong; summing booleans is much faster than arr.all()
        check = data.arr.eval(_outside(pl.element(), common)).arr.sum().eq(outside)
        if others:
            flat = data.reshape((-1,))
            check = pl.all_horizontal(check, *[_member(flat.gather_every(n, p), s) for p, s in others])
        length = c.str.len_bytes()
        return (length.eq(n) if end else length.ge(n)).and_(check)  # False & null: False; null & null: null

    min_rows = FAST_MIN_ROWS_OTHERS if others else FAST_MIN_ROWS
    if len(others) * OTHERS_SHARE > n:  # the regex is cheaper at every size (short, prefix-like patterns)
        min_rows = NEVER
    return FastPath(build, min_rows, n)


def _negated(atom: Atom, end: bool) -> FastPath | None:
    if not end:  # normalized: a fixed prefix of atom.low characters
        return None
    excluded = [chr(code) for code in sorted(atom.chars)]

    def build(c: pl.Expr) -> pl.Expr:
        found = c.str.contains(excluded[0], literal=True) if len(excluded) == 1 else c.str.contains_any(excluded)
        check = found.not_()
        n = c.str.len_chars()
        if atom.high is not None:
            check = check.and_(n.is_between(atom.low, atom.high))
        elif atom.low:
            check = check.and_(n.ge(atom.low))
        return check

    return FastPath(build)
