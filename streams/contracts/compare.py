"""Order relations between two versions of one constraint: tightened, loosened, same or changed.

``contracts diff`` classifies each change by what it does to the set of records (or batch
metric values) a constraint accepts: **tightened** when the new set is a subset of the old one
(records that passed may now fail: breaking for producers), **loosened** when it is a superset
(a guarantee consumers relied on is weaker: breaking for consumers), **changed** when neither
contains the other (breaking for both). Pure functions over the rule IR.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.contracts.model import Classification, Threshold, Unit

__all__ = [
    "Relation",
    "bound_relation",
    "classification_level",
    "combine",
    "multiple_relation",
    "set_relation",
    "threshold_relation",
    "type_relation",
]


class Relation(enum.StrEnum):
    SAME = "same"
    TIGHTENED = "tightened"  # new accepts a subset of what old accepted
    LOOSENED = "loosened"  # new accepts a superset
    CHANGED = "changed"  # neither contains the other

    @property
    def breaks_producers(self) -> bool:
        return self in (Relation.TIGHTENED, Relation.CHANGED)

    @property
    def breaks_consumers(self) -> bool:
        return self in (Relation.LOOSENED, Relation.CHANGED)


def combine(*relations: Relation) -> Relation:
    """The relation of a conjunction of constraints whose parts changed by ``relations``."""
    moved = {r for r in relations if r is not Relation.SAME}
    if not moved:
        return Relation.SAME
    return moved.pop() if len(moved) == 1 else Relation.CHANGED


# --- bounds ----------------------------------------------------------------------------------------------

Bound = tuple[Any, bool] | None  # (value, strict) or no bound


def bound_relation(old: Bound, new: Bound, *, lower: bool) -> Relation:
    """A lower (``>=``/``>``) or upper (``<=``/``<``) bound moving from ``old`` to ``new``."""
    if old == new:
        return Relation.SAME
    if old is None:
        return Relation.TIGHTENED
    if new is None:
        return Relation.LOOSENED
    (ov, ostrict), (nv, nstrict) = old, new
    try:
        if ov == nv:
            if ostrict == nstrict:
                return Relation.SAME
            return Relation.TIGHTENED if nstrict else Relation.LOOSENED
        raised = nv > ov
    except TypeError:  # bounds of different types (the field's type changed too)
        return Relation.CHANGED
    return Relation.TIGHTENED if raised == lower else Relation.LOOSENED


def multiple_relation(old: float | None, new: float | None) -> Relation:
    """``multipleOf`` moving from ``old`` to ``new`` (a multiple of 1 is a multiple of 0.5)."""
    if old == new:
        return Relation.SAME
    if old is None:
        return Relation.TIGHTENED
    if new is None:
        return Relation.LOOSENED

    def divides(a: float, b: float) -> bool:  # is every multiple of b a multiple of a?
        q = b / a
        return math.isclose(q, round(q), rel_tol=1e-12, abs_tol=1e-12)

    if divides(old, new):
        return Relation.TIGHTENED
    if divides(new, old):
        return Relation.LOOSENED
    return Relation.CHANGED


def set_relation(old: frozenset[Any], new: frozenset[Any]) -> Relation:
    """An allow-list (``isin``) moving from ``old`` to ``new``."""
    if old == new:
        return Relation.SAME
    if new < old:
        return Relation.TIGHTENED
    if new > old:
        return Relation.LOOSENED
    return Relation.CHANGED


# --- thresholds ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interval:
    lo: float
    lo_in: bool
    hi: float
    hi_in: bool

    def within(self, other: _Interval) -> bool:
        lo_ok = other.lo < self.lo or (other.lo == self.lo and (other.lo_in or not self.lo_in))
        hi_ok = self.hi < other.hi or (self.hi == other.hi and (other.hi_in or not self.hi_in))
        return lo_ok and hi_ok

    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_in and self.hi_in))


_INF = math.inf


def _allowed(t: Threshold) -> list[_Interval]:
    """The metric values a threshold allows, as disjoint intervals, within the metric's domain.

    Failure counts (``unit: rows``) are whole numbers ≥ 0, so ``mustBeLessThan: 1`` and ``mustBe: 0``
    allow the same values; percentages lie in [0, 100].
    """
    raw = _raw(t)
    top = 100.0 if t.unit is Unit.PERCENT else _INF
    out = []
    for i in raw:
        lo, lo_in = (0.0, True) if i.lo < 0 or (i.lo == 0 and i.lo_in) else (i.lo, i.lo_in)
        hi, hi_in = (top, top != _INF) if i.hi > top else (i.hi, i.hi_in)
        if t.unit is Unit.ROWS:  # whole numbers: closed integer intervals
            lo, lo_in = (float(math.ceil(lo)) if lo_in else float(math.floor(lo) + 1)), True
            if hi != _INF:
                hi, hi_in = (float(math.floor(hi)) if hi_in else float(math.ceil(hi) - 1)), True
        interval = _Interval(lo, lo_in, hi, hi_in)
        if not interval.empty():
            out.append(interval)
    return out


def _subset(a: list[_Interval], b: list[_Interval]) -> bool:
    return all(any(i.within(j) for j in b) for i in a)


def threshold_relation(old: Threshold, new: Threshold, *, batch_metric: bool = False) -> Relation:
    """A rule's threshold moving from ``old`` to ``new`` (tightened: fewer metric values pass).

    ``batch_metric``: the metric is a value of the batch (``rowCount``, SQL), not a failure count,
    so its domain is not restricted to whole numbers ≥ 0.
    """
    if old == new:
        return Relation.SAME
    if old.unit is not new.unit:
        return Relation.CHANGED
    o, n = (_raw(old), _raw(new)) if batch_metric else (_allowed(old), _allowed(new))
    sub, sup = _subset(n, o), _subset(o, n)
    if sub and sup:
        return Relation.SAME
    if sub:
        return Relation.TIGHTENED
    return Relation.LOOSENED if sup else Relation.CHANGED


def _raw(t: Threshold) -> list[_Interval]:
    """The allowed values of a batch metric's threshold over all real numbers."""
    v = t.value
    if isinstance(v, tuple):
        a, b = v
        if t.operator == "mustBeBetween":
            return [_Interval(a, True, b, True)]
        return [_Interval(-_INF, False, a, False), _Interval(b, False, _INF, False)]
    return {
        "mustBe": [_Interval(v, True, v, True)],
        "mustNotBe": [_Interval(-_INF, False, v, False), _Interval(v, False, _INF, False)],
        "mustBeGreaterThan": [_Interval(v, False, _INF, False)],
        "mustBeGreaterOrEqualTo": [_Interval(v, True, _INF, False)],
        "mustBeLessThan": [_Interval(-_INF, False, v, False)],
        "mustBeLessOrEqualTo": [_Interval(-_INF, False, v, True)],
    }[t.operator]


# --- types -----------------------------------------------------------------------------------------------

_INT_RANGES: dict[type[pl.DataType], tuple[int, int]] = {
    pl.Int8: (-(2**7), 2**7 - 1),
    pl.Int16: (-(2**15), 2**15 - 1),
    pl.Int32: (-(2**31), 2**31 - 1),
    pl.Int64: (-(2**63), 2**63 - 1),
    pl.UInt8: (0, 2**8 - 1),
    pl.UInt16: (0, 2**16 - 1),
    pl.UInt32: (0, 2**32 - 1),
    pl.UInt64: (0, 2**64 - 1),
}
_UNIT_RANK = {"ms": 0, "us": 1, "ns": 2}


def _contains(a: pl.DataType, b: pl.DataType) -> bool:
    """Does every value of type ``b`` belong to type ``a`` (as the contract reads types)?"""
    if a == b:
        return True
    ra, rb = _INT_RANGES.get(type(a)), _INT_RANGES.get(type(b))
    if ra is not None and rb is not None:
        return ra[0] <= rb[0] and rb[1] <= ra[1]
    if rb is not None and a.is_float():
        # an integer is a number when the float holds it exactly: float32 up to 2**24, float64 up to 2**53 (the
        # engine refuses an integer the cast would round, so int64 → number is a change both ways, int32 → number
        # widens)
        exact = 2**53 if isinstance(a, pl.Float64) else 2**24
        return rb[1] <= exact and rb[0] >= -exact
    if isinstance(a, pl.Float64) and isinstance(b, pl.Float32):
        return True
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
        if a.time_zone != b.time_zone or ("ns" in (a.time_unit, b.time_unit) and a.time_unit != b.time_unit):
            return False  # nanoseconds span only 1677-2262 (a 9999-12-31 is refused), coarser units lose digits
        return _UNIT_RANK[str(a.time_unit)] >= _UNIT_RANK[str(b.time_unit)]
    if isinstance(a, pl.List) and isinstance(b, pl.List):
        ia, ib = a.inner, b.inner
        return isinstance(ia, pl.DataType) and isinstance(ib, pl.DataType) and _contains(ia, ib)
    return False


def type_relation(old: pl.DataType, new: pl.DataType) -> Relation:
    """A field's type moving from ``old`` to ``new``: narrowed (tightened), widened (loosened) or changed."""
    wider, narrower = _contains(new, old), _contains(old, new)
    if wider and narrower:
        return Relation.SAME
    if narrower:
        return Relation.TIGHTENED
    return Relation.LOOSENED if wider else Relation.CHANGED


def classification_level(c: Classification | None) -> int:
    """0 unclassified / public, 1 internal, 2 redacted (restricted, confidential, pii)."""
    if c is None or c is Classification.PUBLIC:
        return 0
    return 2 if c.redacted else 1
