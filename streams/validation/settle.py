"""Three-state pass columns: rules decided in the fused pass for most rows, by their own expression for the rest.

Some rules have a cheaper expression that decides most rows but not all: ``str_length`` from the byte
length of a value (:func:`length_bounds`), a pattern from the values seen in earlier batches
(:mod:`streams.validation.memo`). In the pass such a rule yields True where the row surely fails,
False where it surely passes and null where the cheap test cannot tell (and on nulls, which pass).
:func:`settle_rows` then runs the rule's own expression over the undecided rows only, so the mask is
exactly the rule's: a batch without undecided rows costs no second look.
"""

from __future__ import annotations

import polars as pl

from streams.contracts.model import Op, Rule

__all__ = ["length_bounds", "settle_all", "settle_rows", "undecided"]


def length_bounds(rule: Rule, schema: pl.Schema) -> pl.Expr | None:
    """The three-state pass expression of a ``str_length`` rule over a String column (of the
    batch's ``schema``) whose minimum is at most 1 (or absent), or None. A value of ``n`` bytes has
    at most ``n`` characters and at least ``ceil(n / 4)`` (UTF-8), and fewer than ``min <= 1``
    characters exactly when fewer than ``min`` bytes; so the byte length (kept by the string view,
    no decoding) decides every value but those longer than the maximum in bytes and not in
    ``ceil(n / 4)`` (null: counted by characters)."""
    if rule.op is not Op.STR_LENGTH or schema.get(str(rule.column)) != pl.String:
        return None
    lo, hi = rule.args
    if (lo is None and hi is None) or (lo is not None and not lo <= 1):
        return None
    n = pl.col(str(rule.column)).str.len_bytes()
    short = n.lt(lo) if lo is not None else pl.lit(False)
    if hi is None:
        return short
    return pl.when(n.le(hi)).then(short).when(((n + 3) // 4).gt(hi)).then(True)


def undecided(found: pl.Series, values: pl.Series) -> bool:
    """Whether the three-state column ``found`` leaves rows undecided (null where ``values`` is not)."""
    return found.null_count() > values.null_count()


def settle_rows(base: pl.DataFrame, found: pl.Series, column: str, fails: pl.Expr) -> pl.Series:
    """The exact failure mask from the three-state ``found``: its True rows, and ``fails`` (the rule's
    own failure mask over ``column``) evaluated on the undecided rows only."""
    values = base.get_column(column)
    at = (found.is_null() & values.is_not_null()).arg_true()
    failed = pl.DataFrame([values.gather(at)]).select(fails).to_series().fill_null(False)
    mask = found.fill_null(False)
    return mask.scatter(at.filter(failed), True) if failed.any() else mask


def settle_all(
    base: pl.DataFrame,
    found: pl.DataFrame,
    counts: dict[int, int],
    columns: dict[int, pl.Series],
    rules: dict[int, tuple[str, pl.Expr]],
) -> None:
    """Settle the three-state pass columns of ``rules`` (slot -> (its column, its failure mask)) that
    leave rows undecided: their ``counts`` and mask ``columns`` (slot -> mask) are updated in place."""
    for k, (column, fails) in rules.items():
        decided = found.get_column(str(k))
        if undecided(decided, base.get_column(column)):
            mask = settle_rows(base, decided, column, fails)
            counts[k] = int(mask.sum())
            if counts[k]:
                columns[k] = mask
            else:
                columns.pop(k, None)
