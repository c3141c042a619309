"""Rule layout and row predicates: what each rule checks, as polars expressions.

Shared by the fused engine (:mod:`streams.validation.engine`) and the pandera backend
(:mod:`streams.validation.pandera`), so both place and evaluate every rule the
same way; element-wise checks mirror ``pandera.backends.polars.builtin_checks``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.contracts.expressions import comparison_units, to_polars
from streams.contracts.model import Op, Rule, SchemaObject, Severity, check_label
from streams.validation.regex import fast_contains, strategy
from streams.validation.regex.bytewise import MIN_ROWS as BYTEWISE_MIN_ROWS
from streams.validation.regex.bytewise import ByteCheck, bytewise

COLUMN_CONTEXT = "Column"
FRAME_CONTEXT = "DataFrameSchema"
#: ``isin`` of at most this many strings is an equality chain (faster than ``is_in`` below it)
_EQ_CHAIN_MAX = 6
_COMPARISONS: dict[Op, Callable[[pl.Expr, Any], pl.Expr]] = {
    op: getattr(pl.Expr, op.name.lower()) for op in (Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE)
}


# --- rule layout, shared with the pandera backend ---------------------------------------


@dataclass(frozen=True, slots=True)
class RuleSlot:
    """Where a rule sits in the equivalent pandera schema.

    ``placement`` is ``dtype``/``nullable``/``unique`` (Column attributes),
    ``column`` (a Check in the Column's list, numbered ``check_number``) or
    ``frame`` (a DataFrameSchema-level Check, numbered ``check_number``).
    """

    rule: Rule
    placement: str
    check_number: int | None

    @property
    def per_row(self) -> bool:
        """Failure cases are reported per failing row (else one summary case)."""
        return not self.rule.is_batch_metric and self.rule.threshold.zero_tolerance

    @property
    def context(self) -> str:
        return FRAME_CONTEXT if self.placement == "frame" else COLUMN_CONTEXT


def plan_rules(schema_obj: SchemaObject) -> tuple[Rule, ...]:
    """The schema object's rules, plus an implicit ``dtype`` rule for each field lacking one."""
    typed = {r.column for r in schema_obj.rules if r.op is Op.DTYPE}
    implicit = tuple(
        Rule(f"{f.name}:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), f.dtype), f.name)
        for f in schema_obj.fields
        if f.name not in typed
    )
    return implicit + tuple(schema_obj.rules)


def rule_layout(schema_obj: SchemaObject) -> tuple[RuleSlot, ...]:
    """Assign every rule its pandera placement and ``check_number`` (see :class:`RuleSlot`)."""
    declared = set(schema_obj.columns)
    numbers: dict[str | None, int] = {}
    slots: list[RuleSlot] = []
    attributes: set[tuple[str | None, Op]] = set()  # a Column has one `nullable` and one `unique`
    for rule in plan_rules(schema_obj):
        strict = rule.threshold.zero_tolerance and rule.column in declared
        native = strict and rule.severity is Severity.ERROR
        if rule.op is Op.DTYPE:
            slots.append(RuleSlot(rule, "dtype", None))
        elif native and rule.op in (Op.NOT_NULL, Op.UNIQUE) and (rule.column, rule.op) not in attributes:
            # a second such rule on the column (`required` and a nullValues rule) is a Check of its own,
            # reported under its own check_number, as pandera reports each Check
            attributes.add((rule.column, rule.op))
            slots.append(RuleSlot(rule, "nullable" if rule.op is Op.NOT_NULL else "unique", None))
        else:
            key = rule.column if strict and rule.op is not Op.EXPRESSION and not rule.is_batch_metric else None
            numbers[key] = numbers.get(key, -1) + 1
            slots.append(RuleSlot(rule, "frame" if key is None else "column", numbers[key]))
    return tuple(slots)


# --- row predicates -----------------------------------------------------------------------


def predicate(
    rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None, rows: int | None = None
) -> tuple[pl.Expr, bool]:
    """The row predicate of a row-level rule: ``(expr, ignore_na)``.

    ``expr`` is True where the row passes. With ``ignore_na`` a null result is a
    pass (pandera's ``ignore_na=True``); otherwise ``expr`` is never null. ``rows``
    (if known, a power of two with the batch height in ``[rows, 2 * rows)``) only picks
    the cheapest of equal expressions.
    """
    op, args, c = rule.op, rule.args, column
    # pandera's null on a float column is null or NaN (`nullable=False` fails both)
    null = c.is_null() | c.is_nan() if dtype is not None and dtype.is_float() else c.is_null()
    if op is Op.NOT_NULL:
        return null.not_(), False
    if op is Op.UNIQUE:  # nulls are not duplicates (ODCS leaves them to `required`)
        key, present = unique_key(rule, c)
        return (present & key.is_duplicated()).not_(), False
    if op is Op.MISSING:  # nulls, and the listed values that the column's type can hold
        values = typed_values(args[0], dtype)
        listed = c.is_in(pl.Series(values, dtype=dtype).implode() if dtype is not None else values) if values else None
        return (null | listed.fill_null(False) if listed is not None else null).not_(), False
    if op is Op.EXPRESSION:
        return to_polars(args[0]), True
    if op is Op.MULTIPLE_OF:
        return multiple_of(c, args[0], dtype), True
    return builtin(op, args, c, dtype, rows), True


#: ``multipleOf`` with a fractional step: how far from a whole number ``x / step`` may be, relative to it
MULTIPLE_TOLERANCE = 1e-12


def multiple_of(c: pl.Expr, step: float, dtype: pl.DataType | None = None) -> pl.Expr:
    """``c`` is a whole multiple of ``step``, on the decimal values JSON and the contract write.

    An integer step is exact (``c % step == 0``). A fractional one is not representable in binary floating
    point (``19.99 % 0.01`` is ``0.0099…``), so ``c / step`` is taken as whole within a relative
    :data:`MULTIPLE_TOLERANCE` (the rounding of the two decimal values is ~1e-16): ``19.99`` is a multiple of
    ``0.01`` and ``0.0075`` of ``0.0001`` (JSON Schema's test suite), ``0.00751`` is not; NaN and infinite
    values (or quotients) never are.

    A Float32 value is the decimal written rounded to 24 bits, far coarser than 1e-12 (and dividing in
    Float32 rounds the quotient as much again): it is a multiple when a multiple of ``step`` lies within
    half a Float32 ulp of it, i.e. reads back as it (``float32(19.99)`` is a multiple of ``0.01``, as the
    decimal it prints), computed in Float64.
    """
    if isinstance(step, int) and not isinstance(step, bool):
        return (c % step) == 0
    if dtype == pl.Float32:
        x = c.cast(pl.Float64)
        q = x / step
        half_ulp = pl.lit(2.0).pow(x.abs().log(2).floor() - 24)  # 0 at 0 (log2 0 is -inf)
        return q.is_finite() & ((q - q.round(0)).abs() * abs(step) <= half_ulp * (1 + MULTIPLE_TOLERANCE))
    q = c / step
    return q.is_finite() & ((q - q.round(0)).abs() <= q.abs() * MULTIPLE_TOLERANCE)


def builtin(
    op: Op, args: tuple[Any, ...], c: pl.Expr, dtype: pl.DataType | None = None, rows: int | None = None
) -> pl.Expr:
    """pandera's built-in element-wise check ``op`` as a polars expression (True = pass).

    Mirrors ``pandera.backends.polars.builtin_checks``, with two exact shortcuts on
    String columns: ``isin``/``notin`` of a few strings use an equality chain (same
    results, nulls included, 2-4x faster than ``is_in``), and simple anchored patterns
    are evaluated without a regex (:mod:`streams.validation.regex`).
    """
    if op in _COMPARISONS:
        column, bound = exact_units(c, dtype, args[0])
        return _COMPARISONS[op](column, bound)
    if op is Op.IN_RANGE:
        lo, hi, include_min, include_max = args
        (c_lo, lo), (c_hi, hi) = exact_units(c, dtype, lo), exact_units(c, dtype, hi)
        return (c_lo.ge(lo) if include_min else c_lo.gt(lo)).and_(c_hi.le(hi) if include_max else c_hi.lt(hi))
    if op in (Op.ISIN, Op.NOTIN):
        values = list(args[0])
        if dtype == pl.String and 0 < len(values) <= _EQ_CHAIN_MAX and all(isinstance(v, str) for v in values):
            found = functools.reduce(operator.or_, [c.eq(v) for v in values])
        else:
            found = c.is_in(values)
        return found if op is Op.ISIN else found.not_()
    if op in (Op.STR_MATCHES, Op.STR_CONTAINS):
        pattern = _pattern(op, args)
        fast = fast_contains(c, pattern, rows) if dtype == pl.String else None
        return fast if fast is not None else c.str.contains(pattern, literal=False)
    if op is Op.STR_STARTSWITH:
        return c.str.starts_with(args[0])
    if op is Op.STR_ENDSWITH:
        return c.str.ends_with(args[0])
    if op is Op.STR_LENGTH:
        lo, hi = args
        n = c.str.len_chars()
        if lo is None and hi is None:
            raise ValueError("str_length needs a minimum or a maximum length")
        return n.le(hi) if lo is None else n.ge(lo) if hi is None else n.is_between(lo, hi)
    raise ValueError(f"operator {op.value!r} is not an element-wise check")


def exact_units(c: pl.Expr, dtype: pl.DataType | None, bound: Any) -> tuple[pl.Expr, Any]:
    """A timestamp column and a datetime bound in the units they compare exactly in
    (:func:`~streams.contracts.expressions.comparison_units`); other columns and bounds as they are."""
    column_unit, bound_unit = comparison_units(dtype, bound)
    if column_unit is not None:
        c = c.dt.cast_time_unit(column_unit)
    return c, pl.lit(bound).dt.cast_time_unit(bound_unit) if bound_unit is not None else bound


def failure_expr(rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    """True where the row fails ``rule``; null (a pass) where an ``ignore_na`` predicate is null."""
    return predicate(rule, column, dtype)[0].not_()


def unique_key(rule: Rule, c: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``(key, present)`` of a uniqueness rule: the column (or the tuple of a composite key as a
    struct) and where it is complete (a key with a null part is never a duplicate)."""
    names = rule.key_columns
    if not names:
        return c, c.is_not_null()
    if len(names) == 1:
        return pl.col(names[0]), pl.col(names[0]).is_not_null()
    return pl.struct(*names), pl.all_horizontal(pl.col(n).is_not_null() for n in names)


def typed_values(values: Any, dtype: pl.DataType | None) -> list[Any]:
    """The non-null ``values`` a column of ``dtype`` can hold, cast to it (``''`` or ``'N/A'``
    cannot appear in an Int64 column: they are dropped, not compared)."""
    present = [v for v in values if v is not None]
    if dtype is None or dtype == pl.Null:
        return present
    out = []
    for v in present:
        try:
            out.append(pl.Series([v]).cast(dtype, strict=True)[0])
        except Exception:  # not representable in the column's type: it cannot occur there
            continue
    return [v for v in out if v is not None]


def duplicate_candidates(rule: Rule, c: pl.Expr, dtype: pl.DataType | None) -> tuple[pl.Expr, bool]:
    """``(mask, exact)``: the rows a uniqueness rule may fail, from the same pass as every other rule.

    Text, binary and composite keys are compared by their 64-bit hash (hashing first halves the
    cost): the mask is a superset of the duplicated rows (``exact`` False), verified over the
    candidate rows only (:func:`streams.validation.failures.verify_duplicates`); a collision only
    costs that check. Other keys are compared as they are (``exact``).
    """
    key, present = unique_key(rule, c)
    if len(rule.key_columns) > 1 or dtype in (pl.String, pl.Binary):
        return present & key.hash().is_duplicated(), False
    return present & key.is_duplicated(), True


def pattern_paths(
    slots: tuple[RuleSlot, ...], live: list[int], conformed: pl.Schema, rows: int | None
) -> tuple[dict[int, ByteCheck], frozenset[int]]:
    """How the engine runs the pattern rules of ``live`` slots over String columns, besides their
    predicate: fixed-width patterns on batches of at least ``bytewise.MIN_ROWS`` rows are checked
    byte by byte (:mod:`streams.validation.regex.bytewise`: slot -> check), and patterns without
    a fast path may be memoized per distinct value (:mod:`streams.validation.memo`: slots)."""
    checks: dict[int, ByteCheck] = {}
    memos = set()
    for k in live:
        rule = slots[k].rule
        if rule.op not in (Op.STR_MATCHES, Op.STR_CONTAINS) or conformed.get(str(rule.column)) != pl.String:
            continue
        pattern = rule_pattern(rule)
        if (rows or 0) >= BYTEWISE_MIN_ROWS and (check := bytewise(pattern)) is not None:
            checks[k] = check
        elif strategy(pattern) is None:
            memos.add(k)
    return checks, frozenset(memos)


def rule_pattern(rule: Rule) -> str:
    """The regex a ``str_matches`` / ``str_contains`` rule runs (``str_matches`` anchored at the start)."""
    return _pattern(rule.op, rule.args)


def _pattern(op: Op, args: tuple[Any, ...]) -> str:
    pattern = str(args[0])
    if op is Op.STR_MATCHES and not pattern.startswith("^"):  # pandera anchors str_matches at the start
        pattern = f"^{pattern}"
    return pattern


def cost(rule: Rule, dtype: pl.DataType | None, rows: int | None = None) -> float:
    """A rough relative cost of evaluating ``rule`` over a batch (for ordering a fused select:
    polars balances its threads better when the expensive expressions come last)."""
    op = rule.op
    if op in (Op.STR_MATCHES, Op.STR_CONTAINS):
        fast = dtype == pl.String and fast_contains(pl.col(""), _pattern(op, rule.args), rows) is not None
        return 4.0 if fast else 10.0
    if op is Op.UNIQUE:
        return 4.0
    if dtype in (pl.String, pl.Categorical, pl.Binary) or op is Op.EXPRESSION:
        return 1.0
    return 0.1
