"""Patterns over low-cardinality columns, evaluated once per distinct value.

A pattern rule (``str_matches`` / ``str_contains``) over a String column whose values repeat (a
firmware or model version, a status) runs its regex on every row although it has a few distinct
values. :class:`PatternMemo` keeps, per rule of a compiled plan, the values known to *pass* the
pattern; in the fused pass the rule's mask is then "not one of those values" (an equality chain, or
``is_in`` past a few values: a fifth to a half of the regex's cost), a superset of the failing rows.
The candidate rows are checked with the rule's own expression (the regex) over those rows only, so
the mask is exactly the regex's: a value's verdict does not depend on its row. Values that pass
there are learned for the next batches, and so are the values that fail (at most ``MAX_VALUES``; a
producer repeating a wrong version string repeats it batch after batch): once some are known, the
pass's expression tells known failures (True), known passes (False) and other values (null) apart,
and a batch whose values are all known is settled in the pass, without the regex or a second look
at its rows (:meth:`PatternMemo.settle`).

The memo is decided once per rule on the first batch: a sample of ``SAMPLE`` rows with at most
``MAX_VALUES`` distinct values, then all distinct values of the column at most ``MAX_VALUES``, whose
passing ones are kept. A column with more distinct values (or whose learned passing values would
exceed ``MAX_VALUES``) keeps the regex (or its fast path) from then on. Patterns that have a fast path
(:mod:`streams.validation.regex`) are cheaper than the equality test and are not memoized.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

import polars as pl

from streams.validation.settle import undecided

__all__ = ["MAX_VALUES", "SAMPLE", "PatternMemo", "settle_memos"]

MAX_VALUES = 64  # distinct passing values kept per rule
SAMPLE = 1024  # rows looked at before the distinct values of a whole column are counted
_EQ_CHAIN_MAX = 6  # up to this many values, an equality chain is cheaper than is_in


@dataclass(slots=True)
class PatternMemo:
    """The passing (and failing) values of one pattern rule over ``column`` (see the module docstring)."""

    column: str
    passing: frozenset[str] | None = None  # None: undecided (first batch) or given up
    decided: bool = False
    failing: frozenset[str] = frozenset()  # values seen to fail (at most MAX_VALUES; kept while passing is)
    _expr: pl.Expr | None = field(default=None, repr=False)

    @property
    def three_state(self) -> bool:
        """Whether :meth:`candidates` tells known failures apart from unknown values."""
        return bool(self.failing)

    def candidates(self) -> pl.Expr | None:
        """The pass's expression for the rule; None while undecided or given up (the rule's own
        expression runs). Without known failing values: True where the value is not known to pass
        (null: null, a pass). With them (:attr:`three_state`): True where the value is known to fail,
        False where it is known to pass, null elsewhere (a null, or a value seen in no batch yet)."""
        if self.passing is None:
            return None
        if self._expr is None:
            c = pl.col(self.column)
            passes = _one_of(c, self.passing)
            if self.failing:
                self._expr = pl.when(_one_of(c, self.failing)).then(True).when(passes).then(False)
            else:
                self._expr = passes.not_()
        return self._expr

    def decide(self, values: pl.Series, fails: pl.Series) -> None:
        """After the first batch (where the rule's own expression ran): keep the passing values of a
        column with few distinct values, else give up. ``fails`` is the rule's mask on ``values``."""
        self.decided = True
        if values.head(SAMPLE).n_unique() > MAX_VALUES:
            return
        frame = pl.DataFrame([values.alias("v"), fails.alias("f")]).filter(pl.col("v").is_not_null())
        distinct = frame.unique("v")
        if distinct.height > MAX_VALUES:
            return
        failed = distinct.get_column("f").fill_null(False)
        passing = distinct.get_column("v").filter(failed.not_())
        if passing.len():  # nothing known to pass: the memo would run the regex on every row
            self.passing = frozenset(passing.to_list())
            self.failing = frozenset(distinct.get_column("v").filter(failed).to_list())

    def settle(
        self, base: pl.DataFrame, found: pl.Series, failures: int, fails: pl.Expr, three_state: bool
    ) -> pl.Series | None:
        """The rule's exact failure mask (None: no row fails) from the pass's column ``found`` (built
        by :meth:`candidates` before this batch; ``three_state`` as it was then) and its count of True
        ``failures``: rows known to fail, and the rows whose value is not known checked by ``fails``
        (the rule's own expression, the regex) over those rows only."""
        if three_state:
            if not undecided(found, base.get_column(self.column)):
                return found if failures else None
            rows = found.is_null() & base.get_column(self.column).is_not_null()
            mask = self.resolve(base, rows, fails) | found.fill_null(False)
        elif failures:
            mask = self.resolve(base, found, fails)
        else:
            return None
        return mask if mask.any() else None

    def resolve(self, base: pl.DataFrame, candidates: pl.Series, fails: pl.Expr) -> pl.Series:
        """The rule's exact failure mask over the ``candidates`` rows (False elsewhere): ``fails`` (the
        rule's own expression over ``column``) evaluated on those rows only. Their values are learned
        (past ``MAX_VALUES`` passing ones, the memo is given up; failing ones stop being learned)."""
        at = candidates.fill_null(False).arg_true()
        values = base.get_column(self.column).gather(at)
        failed = pl.DataFrame([values.alias(self.column)]).select(fails).to_series().fill_null(False)
        if self.passing is not None:
            passed = frozenset(values.filter(failed.not_()).drop_nulls().unique().to_list())
            seen = frozenset(values.filter(failed).unique().to_list()) if failed.any() else frozenset()
            if not passed <= self.passing:
                learned = self.passing | passed
                self.passing, self._expr = (learned if len(learned) <= MAX_VALUES else None), None
            if self.passing is not None and not seen <= self.failing and len(self.failing | seen) <= MAX_VALUES:
                self.failing, self._expr = self.failing | seen, None
        mask = pl.Series(candidates.name, [False], dtype=pl.Boolean).new_from_index(0, base.height)
        return mask.scatter(at.filter(failed), True) if failed.any() else mask


def _one_of(c: pl.Expr, values: frozenset[str]) -> pl.Expr:
    """``c`` is one of ``values`` (an equality chain, or ``is_in`` past a few values)."""
    ordered = sorted(values)
    if len(ordered) <= _EQ_CHAIN_MAX:
        return functools.reduce(operator.or_, [c.eq(v) for v in ordered])
    return c.is_in(pl.Series(ordered, dtype=pl.String).implode())


def settle_memos(
    memos: dict[int, PatternMemo],
    memoized: dict[int, bool],
    base: pl.DataFrame,
    found: pl.DataFrame,
    counts: dict[int, int],
    columns: dict[int, pl.Series],
    fails: dict[int, pl.Expr],
) -> None:
    """After the pass, the exact masks of the memoized pattern slots (``memoized``: slot -> whether
    its pass column was three-state), updating ``counts`` and ``columns`` (slot -> mask) in place; the
    memos of the other slots (the regex ran) decide on their first batch. ``fails``: slot -> the
    rule's own failure mask (the regex)."""
    for k, memo in memos.items():
        if k in memoized:
            decided = found.get_column(str(k))
            settled = memo.settle(base, decided, counts[k], fails[k], memoized[k])
            counts[k] = 0 if settled is None else counts[k] if settled is decided else int(settled.sum())
            if settled is None:
                columns.pop(k, None)
            else:
                columns[k] = settled
        elif not memo.decided:
            memo.decide(base.get_column(memo.column), found.get_column(str(k)))
