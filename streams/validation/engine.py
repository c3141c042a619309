"""The fused polars validation plan: the hot path of the stream workers.

:func:`compile_plan` compiles one schema object of a :class:`Contract` once;
:meth:`CompiledPlan.validate` then checks each micro-batch in (at most) two
fused polars passes, with no per-rule Python work over rows:

1. one ``select`` computing, for every row-level rule at once, its failing-row
   count (uniqueness: a cheap may-have-duplicates flag), after an optional
   conformance step (a no-op when the dtypes already match);
2. only if something failed, one ``with_columns`` adding the failure masks of the
   failing rules, from which ``valid_mask``, ``violations`` and the failure
   cases of the failing rows are derived.

Semantics follow pandera's polars backend (the reference:
:mod:`streams.contracts.pandera_backend`) rule by rule. Deliberate differences:

* **Conformance.** A column whose dtype differs from ``Field.dtype`` is cast with
  ``strict=False``: numeric to numeric, String to Date/Datetime (ISO-8601),
  Datetime to another unit/time zone (naive values are taken to be in the target
  zone), Categorical/Enum to String and String to Enum/Categorical. Every other
  pair (String to numeric, numeric to String, Boolean to/from numeric, ...) is a
  mismatch for every non-null value. A value that is non-null before the cast and
  null (or different: ``1.5`` to Int64, ``300`` to Int8) after it fails the
  column's ``dtype`` rule **per row**, with the offending value as
  ``failure_case`` and the row ``index``. pandera (without ``coerce``) reports one
  column-level ``dtype('...')`` failure whose ``failure_case`` is the observed
  dtype and whose ``index`` is null. The other rules then see the conformed
  column (null where the value did not conform).
* **Missing columns** are reported like pandera (``column_in_dataframe``,
  ``DataFrameSchema`` context, null column and index, failing the column's dtype
  rule) and then treated as all-null, so required fields also fail
  ``not_nullable`` on every row (pandera skips the column's other checks).
* **Thresholded rules** (not zero-tolerance) and batch metrics that fail report
  one summary case whose ``failure_case`` is the metric (pandera: the error of
  the scalar check); the failing rows of thresholded rules are in ``violations``.
* A rule that cannot be evaluated (type error, unknown column, bad regex, SQL
  error) fails with ``CheckResult.error`` set and one failure case carrying the
  error, as pandera does; other rules are unaffected. ``validate`` never raises
  on data.
"""

from __future__ import annotations

import functools
import operator
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.contracts.expressions import to_polars
from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, Severity, Unit, check_label
from streams.validation.report import (
    FAILURE_CASE_SCHEMA,
    CheckResult,
    ValidationReport,
    as_text,
    concat_cases,
    redact,
    row_cases,
    verdicts,
)

COLUMN_CONTEXT = "Column"
FRAME_CONTEXT = "DataFrameSchema"
_PREFIX = "__qs_"
# ISO-8601 layouts polars tries when Arrow cannot parse a whole batch ("%#z": Z, +hh:mm or +hhmm)
_ISO = tuple(f"%Y-%m-%d{t}{z}" for t in ("T%H:%M:%S%.f", " %H:%M:%S%.f", "T%H:%M") for z in ("%#z", ""))
_ISO += ("%Y-%m-%d",)
_CACHE_SIZE = 64
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
    for rule in plan_rules(schema_obj):
        strict = rule.threshold.zero_tolerance and rule.column in declared
        native = strict and rule.severity is Severity.ERROR
        if rule.op is Op.DTYPE:
            slots.append(RuleSlot(rule, "dtype", None))
        elif native and rule.op in (Op.NOT_NULL, Op.UNIQUE):
            slots.append(RuleSlot(rule, "nullable" if rule.op is Op.NOT_NULL else "unique", None))
        else:
            key = (
                rule.column if strict and rule.op is not Op.EXPRESSION and not rule.is_batch_metric else None
            )
            numbers[key] = numbers.get(key, -1) + 1
            slots.append(RuleSlot(rule, "frame" if key is None else "column", numbers[key]))
    return tuple(slots)


# --- row predicates -----------------------------------------------------------------------


def predicate(rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None) -> tuple[pl.Expr, bool]:
    """The row predicate of a row-level rule: ``(expr, ignore_na)``.

    ``expr`` is True where the row passes. With ``ignore_na`` a null result is a
    pass (pandera's ``ignore_na=True``); otherwise ``expr`` is never null.
    """
    op, args, c = rule.op, rule.args, column
    if op is Op.NOT_NULL:
        missing = c.is_null() | c.is_nan() if dtype is not None and dtype.is_float() else c.is_null()
        return missing.not_(), False
    if op is Op.UNIQUE:
        return c.is_duplicated().not_(), False
    if op is Op.MISSING:
        values = list(args[0])
        return (c.is_null() | c.is_in(values).fill_null(False) if values else c.is_null()).not_(), False
    if op is Op.EXPRESSION:
        return to_polars(args[0]), True
    if op is Op.MULTIPLE_OF:
        return (c % args[0]) == 0, True
    return builtin(op, args, c, dtype), True


def builtin(op: Op, args: tuple[Any, ...], c: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    """pandera's built-in element-wise check ``op`` as a polars expression (True = pass).

    Mirrors ``pandera.backends.polars.builtin_checks``; ``isin``/``notin`` of a few
    strings on a String column use an equality chain (same results, nulls
    included, 3x faster than ``is_in``).
    """
    if op in _COMPARISONS:
        return _COMPARISONS[op](c, args[0])
    if op is Op.IN_RANGE:
        lo, hi, include_min, include_max = args
        return (c.ge(lo) if include_min else c.gt(lo)).and_(c.le(hi) if include_max else c.lt(hi))
    if op in (Op.ISIN, Op.NOTIN):
        values = list(args[0])
        if dtype == pl.String and 0 < len(values) <= 16 and all(isinstance(v, str) for v in values):
            found = functools.reduce(operator.or_, [c.eq(v) for v in values])
        else:
            found = c.is_in(values)
        return found if op is Op.ISIN else found.not_()
    if op is Op.STR_MATCHES:
        pattern = str(args[0])
        return c.str.contains(pattern if pattern.startswith("^") else f"^{pattern}")
    if op is Op.STR_CONTAINS:
        return c.str.contains(str(args[0]), literal=False)
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


def failure_expr(rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    """True where the row fails ``rule``; null (a pass) where an ``ignore_na`` predicate is null."""
    return predicate(rule, column, dtype)[0].not_()


def _duplicates_possible(c: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A cheap flag, True whenever ``c.is_duplicated()`` has a True (nulls are equal).

    Hashing strings first halves the cost; a collision only costs the exact pass.
    """
    return (c.hash() if dtype in (pl.String, pl.Binary) else c).n_unique() < pl.len()


# --- conformance --------------------------------------------------------------------------


def _conform(name: str, src: pl.DataType, dst: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """``(conformed value, mismatch mask or None)`` for a column of dtype ``src`` declared ``dst``."""
    c = pl.col(name)
    present = c.is_not_null()
    if src == pl.Null:
        return c.cast(dst), None
    if src.is_numeric() and dst.is_numeric():
        out = c.cast(dst, strict=False)
        if src.is_float() and dst.is_float():
            bad = present & (out.is_null() | (out.is_infinite() & c.is_finite()))
        else:
            bad = present & out.cast(src, strict=False).ne_missing(c)
        return pl.when(bad).then(None).otherwise(out), bad
    if src == pl.String and dst == pl.Date:
        out = c.str.to_date("%Y-%m-%d", strict=False)
    elif isinstance(dst, pl.Datetime) and isinstance(src, pl.Datetime):
        out = _to_datetime(c, src, dst)
    elif src in (pl.Categorical, pl.Enum) and dst == pl.String:
        return c.cast(pl.String), None
    elif src == pl.String and isinstance(dst, (pl.Enum, pl.Categorical)):
        out = c.cast(dst, strict=False)
    else:
        return pl.lit(None, dtype=dst), present
    return out, present & out.is_null()


def _to_datetime(c: pl.Expr, src: pl.DataType, dst: pl.Datetime, formats: Sequence[str] = _ISO) -> pl.Expr:
    """Datetime (another unit/zone) or ISO-8601 text as ``dst``; text tries each of ``formats``."""
    unit, tz = dst.time_unit, dst.time_zone

    def localize(naive: pl.Expr) -> pl.Expr:
        return naive.dt.replace_time_zone(tz, ambiguous="null", non_existent="null") if tz else naive

    def from_aware(aware: pl.Expr) -> pl.Expr:
        utc = aware.dt.convert_time_zone(tz or "UTC")
        return utc if tz else utc.dt.replace_time_zone(None)

    if isinstance(src, pl.Datetime):
        cast = c.dt.cast_time_unit(unit)
        return from_aware(cast) if src.time_zone else localize(cast)
    parsed = [
        (from_aware if f.endswith("z") else localize)(c.str.to_datetime(f, time_unit=unit, strict=False))
        for f in formats
    ]
    return parsed[0] if len(parsed) == 1 else pl.coalesce(parsed)


def _first(values: pl.Series) -> Any:
    present = values.is_not_null()
    return values[present.arg_max() or 0] if present.any() else None


def _arrow_timestamps(values: pl.Series, dst: pl.Datetime) -> pl.Series | None:
    """ISO-8601 text parsed by Arrow, 10x faster than polars' formats, or None unless every
    value parses with a zone designator (or every one without, like the first value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if (first := _first(values)) is None:
        return None
    zoned = first[-1:] in ("Z", "z") or re.search(r"[+-]\d\d:?\d\d$", first[10:]) is not None
    try:  # a failing cast is slow (~0.6 us a value): the first value picks the one attempt
        parsed = pl.Series(
            values.name, pc.cast(values.to_arrow(), pa.timestamp("ns", "UTC" if zoned else None))
        )
    except Exception:  # some value has another shape, or is out of the ns range
        return None
    return parsed.to_frame().select(_to_datetime(pl.col(values.name), parsed.dtype, dst)).to_series()


def _batch_format(values: pl.Series, dst: pl.Datetime) -> str:
    """The ISO-8601 layout of the batch's first non-null value."""
    sample = pl.DataFrame({"v": [_first(values)]}, schema={"v": pl.String})
    for fmt in _ISO:
        if sample.select(_to_datetime(pl.col("v"), pl.String(), dst, (fmt,))).to_series().null_count() == 0:
            return fmt
    return _ISO[0]


# --- the compiled plan ----------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    """The plan specialized to one input schema (cached per distinct batch schema)."""

    stage1: list[pl.Expr]  # conformance: casts, added columns, original copies, mismatch masks
    fails: dict[int, pl.Expr]  # slot -> failure mask over the conformed frame (null = pass)
    counts: dict[int, pl.Expr]  # slot -> aggregate: failing rows, or a may-have-duplicates flag
    errors: dict[int, str]  # slot -> why the rule cannot run on this input
    originals: dict[str, str]  # cast column -> column holding its original values
    temporal: dict[str, tuple[str, pl.Datetime]]  # text column parsed per batch -> (mismatch mask, dtype)
    prefix: str  # of internal column names, distinct from every batch column
    output_columns: list[str]
    missing: tuple[str, ...]
    extra: tuple[str, ...]


class CompiledPlan:
    """One schema object compiled once for repeated, fused validation of polars batches."""

    def __init__(self, contract: Contract, schema_obj: SchemaObject) -> None:
        self.contract = contract
        self.schema_obj = schema_obj
        self.slots = rule_layout(schema_obj)
        self._redacted = schema_obj.redacted_columns
        self._thresholds = [s.rule.threshold.describe() for s in self.slots]
        self._per_row = [s.per_row for s in self.slots]
        self._gates = [s.rule.gates_rows for s in self.slots]
        self._clean = {  # the result of each row rule on a batch where no row fails it
            k: CheckResult(
                *(r.name, r.column, r.check, r.severity, 0, 0.0, r.threshold.allows(0), 0),
                *(self._thresholds[k], r.dimension, self._gates[k]),
            )
            for k, r in enumerate(s.rule for s in self.slots)
            if not r.is_batch_metric and r.threshold.allows(0)
        }
        self._cache: dict[tuple[tuple[str, pl.DataType], ...], _Prepared] = {}

    def _prepare(self, schema: pl.Schema) -> _Prepared:
        key = tuple(schema.items())
        if key in self._cache:
            return self._cache[key]
        fields: dict[str, Field] = {f.name: f for f in self.schema_obj.fields}
        prefix = _PREFIX
        while any(n.startswith(prefix) for n in [*schema.names(), *fields]):
            prefix = "_" + prefix
        steps: list[tuple[pl.Expr, pl.Expr]] = []  # (expression, fallback if it cannot run)
        originals: dict[str, str] = {}
        mismatch: dict[str, str] = {}
        temporal: dict[str, tuple[str, pl.Datetime]] = {}
        for i, f in enumerate(fields.values()):
            null = pl.lit(None, dtype=f.dtype).alias(f.name)
            if f.name not in schema:
                steps.append((null, null))
            elif schema[f.name] == pl.String and isinstance(f.dtype, pl.Datetime):
                originals[f.name], mismatch[f.name] = f"{prefix}o{i}", f"{prefix}t{i}"
                steps.append((pl.col(f.name).alias(originals[f.name]),) * 2)
                temporal[f.name] = (mismatch[f.name], f.dtype)
            elif schema[f.name] != f.dtype:
                value, bad = _conform(f.name, schema[f.name], f.dtype)
                originals[f.name] = f"{prefix}o{i}"
                steps += [(pl.col(f.name).alias(originals[f.name]),) * 2, (value.alias(f.name), null)]
                if bad is not None:
                    mismatch[f.name] = name = f"{prefix}t{i}"
                    steps.append((bad.alias(name), pl.col(f.name).is_not_null().alias(name)))
        empty = pl.DataFrame(schema=schema)
        stage1 = [e if not _fails(empty, [e]) else fallback for e, fallback in steps]
        probe = empty.with_columns(stage1).with_columns(
            e
            for n, (m, dtype) in temporal.items()
            for e in (pl.lit(None, dtype).alias(n), pl.lit(False).alias(m))
        )
        conformed = probe.schema
        errors: dict[int, str] = {}
        fails: dict[int, pl.Expr] = {}
        for k, slot in enumerate(self.slots):
            rule, column = slot.rule, str(slot.rule.column)
            if rule.op is Op.DTYPE and column in mismatch:
                fails[k] = pl.col(mismatch[column])
            elif rule.op is not Op.DTYPE and not rule.is_batch_metric:
                try:
                    if rule.op is not Op.EXPRESSION and column not in conformed:
                        raise ValueError(f"column {column!r} is not in the batch")
                    fails[k] = predicate(rule, pl.col(column), conformed.get(column))[0].not_()
                except Exception as exc:  # a rule that cannot run is reported, not raised
                    errors[k] = _error_text(exc)
        if _fails(probe, list(fails.values()), select=True):
            for k in list(fails):
                if (error := _fails(probe, [fails[k]], select=True)) is not None:
                    errors[k] = error
                    del fails[k]
        counts = {k: e.sum() for k, e in fails.items()}
        for k, slot in enumerate(self.slots):
            if slot.rule.op is Op.UNIQUE and k in counts:
                column = str(slot.rule.column)
                counts[k] = _duplicates_possible(pl.col(column), conformed[column])
        declared = list(fields)
        extra = tuple(n for n in schema.names() if n not in fields)
        missing = tuple(n for n in declared if n not in schema)
        output = [*declared, *extra]
        prepared = _Prepared(
            stage1, fails, counts, errors, originals, temporal, prefix, output, missing, extra
        )
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = prepared
        return prepared

    def _conformed(self, df: pl.DataFrame, prepared: _Prepared) -> pl.DataFrame:
        """Conformance. Text timestamps go through Arrow's ISO-8601 parser (10x faster than
        polars' chrono formats) when every value parses; otherwise they are parsed in the
        layout of the batch's first value, and the rows it does not fit are retried with
        every ISO-8601 layout."""
        exprs: list[pl.Expr | pl.Series] = [*prepared.stage1]
        slow = {}
        for name, (mask, dst) in prepared.temporal.items():
            fast = _arrow_timestamps(df.get_column(name), dst)
            if fast is not None:
                exprs += [fast, pl.lit(False).alias(mask)]
            else:
                slow[name] = (mask, dst)
        for name, (mask, dst) in slow.items():
            value = _to_datetime(pl.col(name), pl.String(), dst, (_batch_format(df.get_column(name), dst),))
            exprs += [value.alias(name), (pl.col(name).is_not_null() & value.is_null()).alias(mask)]
        base = df.with_columns(exprs) if exprs else df
        for name, (mask, dst) in slow.items():
            bad = base.get_column(mask)
            if bad.any():
                rows = bad.arg_true()
                text = base.get_column(prepared.originals[name]).gather(rows).to_frame("v")
                retry = text.select(_to_datetime(pl.col("v"), pl.String(), dst)).to_series()
                fixed = base.get_column(name).clone().scatter(rows, retry)
                base = base.with_columns(fixed, bad.clone().scatter(rows, retry.is_null()))
        return base

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """The batch cast to the declared dtypes: null where a value does not conform,
        all-null where a column is missing; declared columns first, then extra ones."""
        prepared = self._prepare(df.schema)
        return self._conformed(df, prepared).select(prepared.output_columns)

    def validate(self, df: pl.DataFrame) -> ValidationReport:
        """Validate one batch. Never raises on bad data: every problem is in the report."""
        start = time.perf_counter()
        if isinstance(df, pl.LazyFrame):
            df = df.collect()
        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"validate() takes a polars DataFrame, not {type(df).__name__}")
        prepared = self._prepare(df.schema)
        errors = dict(prepared.errors)
        try:
            base = self._conformed(df, prepared)
        except Exception as exc:  # conformance failed at run time: every row rule reports it
            errors.update(dict.fromkeys(prepared.fails, _error_text(exc)))
            base = df.with_columns(pl.lit(None, dtype=f.dtype).alias(f.name) for f in self.schema_obj.fields)
        rows = base.height
        # pass 1: one fused aggregate over every row rule
        totals = _evaluate(base, {k: e for k, e in prepared.counts.items() if k not in errors}, errors)
        counts = {int(k): int(v or 0) for k, v in totals.row(0, named=True).items()} if totals.width else {}
        failing = [k for k, n in counts.items() if n]
        # pass 2, only when something failed: the masks of the failing rules
        masks = {k: f"{prepared.prefix}m{k}" for k in failing}
        frame = base
        if failing:
            frame = _evaluate(base, {k: prepared.fails[k].alias(masks[k]) for k in failing}, errors, add=True)
            failing = [k for k in failing if k not in errors]
            exact = [k for k in failing if self.slots[k].rule.op is Op.UNIQUE]
            if exact:
                counts.update(
                    zip(exact, frame.select(pl.col(masks[k]).sum() for k in exact).row(0), strict=True)
                )
                failing = [k for k in failing if counts[k]]
        valid, violations = verdicts(
            frame, [(masks[k], self.slots[k].rule.name, self._gates[k]) for k in failing]
        )
        conformed = base.select(prepared.output_columns) if base is not df else df
        checks, cases = self._results(prepared, conformed, counts, errors)
        cases += self._row_cases(df, frame, prepared, [(masks[k], k) for k in failing if self._per_row[k]])
        valid_rows = int(valid.sum())
        return ValidationReport(
            contract_id=self.contract.id,
            contract_version=self.contract.version,
            contract_sha256=self.contract.sha256,
            schema=self.schema_obj.name,
            rows=rows,
            valid_rows=valid_rows,
            invalid_rows=rows - valid_rows,
            passed=all(c.passed for c in checks if c.severity is Severity.ERROR),
            checks=tuple(checks),
            valid_mask=valid,
            violations=violations,
            failure_cases=concat_cases(cases),
            missing_columns=prepared.missing,
            extra_columns=prepared.extra,
            elapsed_seconds=time.perf_counter() - start,
        )

    def _results(
        self, prepared: _Prepared, conformed: pl.DataFrame, counts: dict[int, int], errors: dict[int, str]
    ) -> tuple[list[CheckResult], list[pl.LazyFrame]]:
        """Per-rule results, plus the schema-level and summary failure cases."""
        rows = conformed.height
        checks: list[CheckResult] = []
        cases: list[tuple[Any, ...]] = [
            (name, FRAME_CONTEXT, None, "column_in_dataframe", None, None, slot.rule.name)
            for name in prepared.missing
            for slot in self.slots
            if slot.rule.op is Op.DTYPE and slot.rule.column == name
        ]
        for k, slot in enumerate(self.slots):
            rule, error = slot.rule, errors.get(k)
            failures, metric = counts.get(k, 0), None
            if not failures and error is None and k in self._clean and rule.column not in prepared.missing:
                checks.append(self._clean[k])
                continue
            if error is None and rule.is_batch_metric:
                metric, error = _batch_metric(rule, conformed, self.schema_obj.name)
            elif error is None:
                metric = 100.0 * failures / rows if rows else 0.0
                metric = metric if rule.threshold.unit is Unit.PERCENT else failures
            passed = error is None and metric is not None and rule.threshold.allows(metric)
            if rule.op is Op.DTYPE and rule.column in prepared.missing:
                passed = False
            elif error is not None or (not passed and not self._per_row[k]):
                shown = error if error is not None else f"{metric:g}"
                context = slot.context if error is not None else FRAME_CONTEXT
                cases.append((shown, context, rule.column, rule.check, slot.check_number, None, rule.name))
            if rule.is_batch_metric:
                failures = int(not passed)
            rate = failures / rows if rows and not rule.is_batch_metric else 0.0
            result = (rule.name, rule.column, rule.check, rule.severity, failures, rate, passed, metric)
            checks.append(CheckResult(*result, self._thresholds[k], rule.dimension, self._gates[k], error))
        frames = [pl.LazyFrame(cases, schema=FAILURE_CASE_SCHEMA, orient="row")] if cases else []
        return checks, frames

    def _row_cases(
        self, df: pl.DataFrame, frame: pl.DataFrame, prepared: _Prepared, failing: list[tuple[str, int]]
    ) -> list[pl.LazyFrame]:
        """One failure case per failing row of each zero-tolerance rule (built lazily)."""
        specs = []
        for mask, k in failing:
            slot = self.slots[k]
            rule, name = slot.rule, str(slot.rule.column)
            if rule.op is Op.EXPRESSION:
                shown = [(n, pl.col(prepared.originals.get(n, n))) for n in df.columns]
                shown = [(n, redact(e) if n in self._redacted else e) for n, e in shown]
                value = (
                    pl.struct(e.alias(n) for n, e in shown).struct.json_encode() if shown else pl.lit("{}")
                )
            else:
                source = prepared.originals.get(name, name) if rule.op is Op.DTYPE else name
                value = as_text(pl.col(source), frame.schema[source])
                value = redact(value) if name in self._redacted else value
            specs.append((mask, value, (slot.context, rule.column, rule.check, slot.check_number, rule.name)))
        return row_cases(frame, f"{prepared.prefix}index", specs)


# --- helpers ----------------------------------------------------------------------------------


def _fails(df: pl.DataFrame, exprs: list[pl.Expr], select: bool = False) -> str | None:
    """Why ``exprs`` cannot run on ``df`` (predicates must be Boolean), or None."""
    try:
        out = df.select(exprs) if select else df.with_columns(exprs)
    except Exception as exc:
        return _error_text(exc)
    wrong = [d for d in out.schema.values() if d not in (pl.Boolean, pl.Null)] if select else []
    return f"the rule evaluates to {wrong[0]}, not Boolean" if wrong else None


def _evaluate(
    df: pl.DataFrame, exprs: dict[int, pl.Expr], errors: dict[int, str], add: bool = False
) -> pl.DataFrame:
    """``df.select`` (or ``with_columns``) of ``exprs`` in one fused pass; expressions that
    fail at run time are isolated, reported in ``errors`` and left out."""
    named = {k: e if add else e.alias(str(k)) for k, e in exprs.items()}
    try:
        return df.with_columns(named.values()) if add else df.select(named.values())
    except Exception:  # isolated below
        pass
    for k, expr in list(named.items()):
        try:
            df.select(expr)
        except Exception as exc:
            errors[k] = _error_text(exc)
            del named[k]
    return df.with_columns(named.values()) if add else df.select(named.values())


def _batch_metric(rule: Rule, conformed: pl.DataFrame, object_name: str) -> tuple[float | None, str | None]:
    if rule.op is Op.ROW_COUNT:
        return conformed.height, None
    try:
        lf = conformed.lazy()
        query = pl.SQLContext(frames={object_name: lf, "batch": lf}).execute(str(rule.args[0]))
        result = query.collect(engine="in-memory")
    except Exception as exc:  # a failing query is a failed check
        return None, _error_text(exc)
    value = result.item(0, 0) if result.height and result.width else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"the SQL query returned {value!r}, not a number"
    return value, None


def _error_text(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")


def compile_plan(contract: Contract, schema: str | None = None) -> CompiledPlan:
    """Compile the schema object ``schema`` of ``contract`` (the only one if omitted)."""
    return CompiledPlan(contract, contract.schema(schema))
