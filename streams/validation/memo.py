"""Patterns over low-cardinality columns, evaluated once per distinct value.

A pattern rule (``str_matches`` / ``str_contains``) over a String column whose values repeat (a
firmware or model version, a status) runs its regex on every row although it has a few distinct
values. :class:`PatternMemo` keeps, per rule of a compiled plan, the values known to *pass* the
pattern; in the fused pass the rule's mask is then "not one of those values" (an equality chain, or
``is_in`` past a few values: a fifth to a half of the regex's cost), a superset of the failing rows.
The candidate rows are checked with the rule's own expression (the regex) over those rows only, so
the mask is exactly the regex's: a value's verdict does not depend on its row. Values that pass
there are learned for the next batches.

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

__all__ = ["MAX_VALUES", "SAMPLE", "PatternMemo"]

MAX_VALUES = 64  # distinct passing values kept per rule
SAMPLE = 1024  # rows looked at before the distinct values of a whole column are counted
_EQ_CHAIN_MAX = 6  # up to this many values, an equality chain is cheaper than is_in


@dataclass(slots=True)
class PatternMemo:
    """The passing values of one pattern rule over ``column`` (see the module docstring)."""

    column: str
    passing: frozenset[str] | None = None  # None: undecided (first batch) or given up
    decided: bool = False
    _expr: pl.Expr | None = field(default=None, repr=False)

    def candidates(self) -> pl.Expr | None:
        """The pass's mask for the rule: True where the value is not known to pass (null: null,
        a pass); None while undecided or given up (the rule's own expression runs)."""
        if self.passing is None:
            return None
        if self._expr is None:
            c = pl.col(self.column)
            values = sorted(self.passing)
            if len(values) <= _EQ_CHAIN_MAX:
                found = functools.reduce(operator.or_, [c.eq(v) for v in values])
            else:
                found = c.is_in(pl.Series(values, dtype=pl.String).implode())
            self._expr = found.not_()
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
        passing = distinct.filter(pl.col("f").fill_null(False).not_()).get_column("v")
        if passing.len():  # nothing known to pass: the memo would run the regex on every row
            self.passing = frozenset(passing.to_list())

    def resolve(self, base: pl.DataFrame, candidates: pl.Series, fails: pl.Expr) -> pl.Series:
        """The rule's exact failure mask from the pass's ``candidates``: ``fails`` (the rule's own
        expression over ``column``) evaluated on the candidate rows only. Their passing values are
        learned (or, past ``MAX_VALUES``, the memo is given up)."""
        at = candidates.fill_null(False).arg_true()
        values = base.get_column(self.column).gather(at)
        failed = pl.DataFrame([values.alias(self.column)]).select(fails).to_series().fill_null(False)
        passed = values.filter(failed.not_()).unique()
        if passed.len() and self.passing is not None:
            learned = self.passing | frozenset(passed.to_list())
            self.passing, self._expr = (learned if len(learned) <= MAX_VALUES else None), None
        mask = pl.Series(candidates.name, [False], dtype=pl.Boolean).new_from_index(0, base.height)
        return mask.scatter(at.filter(failed), True) if failed.any() else mask
