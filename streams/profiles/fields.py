"""Per-field partial profiles: computed by :mod:`streams.profiles.kernels`, merged by plain arithmetic.

Merging two partials gives the partial of the union:

* counts, null counts, histogram bins, ``below`` and category counts add up exactly;
* ``min`` / ``max`` are exact; the k-minimum-values sketch keeps the k smallest distinct hashes
  (exact and order-free);
* ``mean`` and ``m2`` (sum of squared deviations) combine with Chan et al.'s parallel formula,
  exact in arithmetic and equal to a one-pass computation up to float rounding (~1e-12 relative);
* category counts are exact while a field has at most ``cap`` distinct values in every partial;
  above, the top ``cap`` values (by count, then value) are kept and the rest is summed in ``other``,
  so a kept count may be underestimated by at most ``other``.

NaN is profiled as null.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "CategoricalProfile",
    "FieldProfile",
    "NumericProfile",
    "merge_fields",
]


@dataclass(frozen=True, slots=True)
class NumericProfile:
    count: int  # non-null values
    nulls: int
    min: float | None
    max: float | None
    mean: float
    m2: float  # sum of squared deviations from the mean
    hist: tuple[int, ...] = ()  # len(edges) + 1 right-closed bins, see streams.profiles.spec
    below: int = 0  # values strictly below the first edge (the reference minimum)
    below_gap: float = 0.0  # sum of (first edge - v) over those values: the exact lower tail for Wasserstein
    above_gap: float = 0.0  # sum of (v - last edge) over values above the last edge

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0 with fewer than two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        return float(self.variance**0.5)

    @property
    def above(self) -> int:
        """Values strictly above the last edge (the reference maximum)."""
        return self.hist[-1] if self.hist else 0

    def merge(self, other: NumericProfile) -> NumericProfile:
        if len(self.hist) != len(other.hist):
            raise ValueError("numeric profiles with different bins cannot merge")
        hist = tuple(a + b for a, b in zip(self.hist, other.hist, strict=True))
        nulls, below = self.nulls + other.nulls, self.below + other.below
        gaps = (self.below_gap + other.below_gap, self.above_gap + other.above_gap)
        if other.count == 0 or self.count == 0:
            base = self if other.count == 0 else other
            return NumericProfile(base.count, nulls, base.min, base.max, base.mean, base.m2, hist, below, *gaps)
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        assert self.min is not None and other.min is not None and self.max is not None and other.max is not None
        lo, hi = min(self.min, other.min), max(self.max, other.max)
        return NumericProfile(n, nulls, lo, hi, mean, m2, hist, below, *gaps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric", "count": self.count, "nulls": self.nulls, "min": self.min, "max": self.max,
            "mean": self.mean, "m2": self.m2, "hist": self.hist, "below": self.below,
            "below_gap": self.below_gap, "above_gap": self.above_gap,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericProfile:
        lo, hi = d["min"], d["max"]
        return cls(
            int(d["count"]), int(d["nulls"]), None if lo is None else float(lo), None if hi is None else float(hi),
            float(d["mean"]), float(d["m2"]), tuple(int(x) for x in d["hist"]), int(d["below"]),
            float(d["below_gap"]), float(d["above_gap"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    count: int  # non-null values
    nulls: int
    counts: tuple[tuple[str, int], ...]  # (value, count), sorted by value
    other: int  # values dropped by the cap
    kmv: tuple[int, ...]  # the k smallest distinct 64-bit hashes, ascending
    cap: int
    k: int

    @property
    def truncated(self) -> bool:
        return self.other > 0

    @property
    def distinct(self) -> float:
        """Distinct non-null values: exact below ``k``, a KMV estimate (~1/sqrt(k-2) relative error) above."""
        if len(self.kmv) < self.k:
            return float(len(self.kmv))
        return (self.k - 1) * 2.0**64 / (self.kmv[self.k - 1] + 1.0)

    def frequencies(self) -> dict[str, int]:
        return dict(self.counts)

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        if (self.cap, self.k) != (other.cap, other.k):
            raise ValueError("categorical profiles with different caps cannot merge")
        merged = dict(self.counts)
        for value, n in other.counts:
            merged[value] = merged.get(value, 0) + n
        counts, dropped = _cap(merged, self.cap)
        kmv = _smallest_union(self.kmv, other.kmv, self.k)
        return CategoricalProfile(
            self.count + other.count, self.nulls + other.nulls, counts, self.other + other.other + dropped,
            kmv, self.cap, self.k,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical", "count": self.count, "nulls": self.nulls,
            "values": tuple(v for v, _ in self.counts), "counts": tuple(n for _, n in self.counts),
            "other": self.other, "kmv": _pack(self.kmv), "cap": self.cap, "k": self.k,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalProfile:
        values, counts = [str(v) for v in d["values"]], [int(n) for n in d["counts"]]
        if len(values) != len(counts):
            raise ValueError("categorical profile has different numbers of values and counts")
        return cls(
            int(d["count"]), int(d["nulls"]), tuple(zip(values, counts, strict=True)), int(d["other"]),
            _unpack(str(d["kmv"])), int(d["cap"]), int(d["k"]),
        )  # fmt: skip


FieldProfile = NumericProfile | CategoricalProfile


def _smallest_union(a: tuple[int, ...], b: tuple[int, ...], k: int) -> tuple[int, ...]:
    """The ``k`` smallest of the union of two ascending tuples of distinct values (a merge stopping at ``k``)."""
    if not a or not b:
        return (a or b)[:k]
    out: list[int] = []
    i = j = 0
    while len(out) < k and (i < len(a) or j < len(b)):
        if j == len(b) or (i < len(a) and a[i] < b[j]):
            out.append(a[i])
            i += 1
        elif i == len(a) or b[j] < a[i]:
            out.append(b[j])
            j += 1
        else:  # in both
            out.append(a[i])
            i, j = i + 1, j + 1
    return tuple(out)


def _pack(hashes: Sequence[int]) -> str:
    """Hashes as base64 of little-endian uint64s (11 characters each instead of ~20 digits)."""
    return base64.b64encode(struct.pack(f"<{len(hashes)}Q", *hashes)).decode("ascii")


def _unpack(text: str) -> tuple[int, ...]:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 8:
        raise ValueError("distinct-count sketch is not a whole number of 64-bit hashes")
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


def _cap(counts: Mapping[str, int], cap: int) -> tuple[tuple[tuple[str, int], ...], int]:
    if len(counts) <= cap:
        return tuple(sorted(counts.items())), 0
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ranked[:cap]
    return tuple(sorted(kept)), sum(n for _, n in ranked[cap:])


def merge_fields(a: FieldProfile, b: FieldProfile) -> FieldProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return a.merge(b)
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return a.merge(b)
    raise ValueError("a numeric and a categorical profile cannot merge")


# --- helpers of the computation (streams.profiles.kernels) -------------------------------------------


def _int_range(dtype: pl.DataType) -> tuple[int, int]:
    bits = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64, pl.UInt8: 8, pl.UInt16: 16, pl.UInt32: 32}
    bits |= {pl.UInt64: 64}
    width = next(b for t, b in bits.items() if dtype == t)
    if dtype in (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64):
        return 0, 2**width - 1
    return -(2 ** (width - 1)), 2 ** (width - 1) - 1


def hash_strings(values: Sequence[str]) -> tuple[int, ...]:
    """polars' ``hash(seed=0)`` of strings, the hash of the distinct-count sketch (cached: values recur)."""
    return _hash_strings(tuple(values))


@functools.lru_cache(maxsize=4096)
def _hash_strings(values: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(int(h) for h in pl.Series(list(values), dtype=pl.String).hash(seed=0).to_list())
