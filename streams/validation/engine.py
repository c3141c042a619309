"""The fused polars validation plan: the hot path of the stream workers.

:func:`compile_plan` turns one schema object of a :class:`Contract` into a
:class:`CompiledPlan` once; :meth:`CompiledPlan.validate` then validates each
micro-batch with a single lazy polars query that

1. *conforms* the batch to the declared dtypes (a no-op when they already match),
2. evaluates the failure mask of every row-level rule in the same fused plan,

and only afterwards, for the rules that actually failed, materializes failure
cases (so a clean batch costs little more than the masks and their counts).

Semantics follow pandera's polars backend (the reference, see
:mod:`streams.contracts.pandera_backend`) rule by rule; the deliberate differences:

* **Conformance.** A column whose dtype differs from ``Field.dtype`` is cast
  (``strict=False``): numeric to numeric, String to Date/Datetime (ISO-8601),
  Datetime to another unit/time zone (naive values are taken to be in the target
  zone), Categorical/Enum to String and String to Enum/Categorical. Every other
  pair (String to numeric, numeric to String, Boolean to/from numeric, ...) is a
  mismatch for every non-null value. A value that is non-null before the cast and
  null or different after it fails the column's ``dtype`` rule **per row**, with
  the offending value as ``failure_case`` and the row ``index``; pandera instead
  reports one column-level ``dtype('...')`` failure with the observed dtype and a
  null index. The other rules then see the conformed column (null where the
  value did not conform).
* **Missing columns** are reported like pandera (``column_in_dataframe``,
  ``DataFrameSchema`` context, null column and index) and then treated as
  all-null, so required fields also fail ``not_nullable`` on every row.
* **Thresholded rules** (not zero-tolerance) report one summary failure case
  (the metric) rather than one per row; their failing rows still appear in
  ``violations``. Batch metrics (``row_count``, ``sql``) report the metric, or
  the error of a query that could not run.
* A rule that cannot be evaluated (a type error, an unknown column, an invalid
  regex) fails with ``CheckResult.error`` set and one failure case carrying the
  error; the other rules are unaffected. ``validate`` never raises on data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.contracts.expressions import to_polars
from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, Severity, Unit, check_label
from streams.validation.report import (
    FAILURE_CASE_SCHEMA,
    REDACTED,
    CheckResult,
    ValidationReport,
    empty_failure_cases,
)

COLUMN_CONTEXT = "Column"
FRAME_CONTEXT = "DataFrameSchema"
_PREFIX = "__qs_"
_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_CACHE_SIZE = 64


# --- rule layout shared with the pandera backend ------------------------------------


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
    """The schema object's rules plus an implicit ``dtype`` rule for each field lacking one."""
    typed = {r.column for r in schema_obj.rules if r.op is Op.DTYPE}
    implicit = tuple(
        Rule(
            name=f"{f.name}:dtype",
            op=Op.DTYPE,
            args=(),
            check=check_label(Op.DTYPE, (), f.dtype),
            column=f.name,
        )
        for f in schema_obj.fields
        if f.name not in typed
    )
    return implicit + tuple(schema_obj.rules)


def rule_layout(schema_obj: SchemaObject) -> tuple[RuleSlot, ...]:
    """Assign every rule its pandera placement and ``check_number`` (see :class:`RuleSlot`)."""
    declared = set(schema_obj.columns)
    column_counts: dict[str, int] = {}
    frame_count = 0
    slots: list[RuleSlot] = []
    for rule in plan_rules(schema_obj):
        native = rule.severity is Severity.ERROR and rule.threshold.zero_tolerance and rule.column in declared
        if rule.op is Op.DTYPE:
            slots.append(RuleSlot(rule, "dtype", None))
        elif native and rule.op is Op.NOT_NULL:
            slots.append(RuleSlot(rule, "nullable", None))
        elif native and rule.op is Op.UNIQUE:
            slots.append(RuleSlot(rule, "unique", None))
        elif (
            rule.column in declared
            and rule.op is not Op.EXPRESSION
            and not rule.is_batch_metric
            and rule.threshold.zero_tolerance
        ):
            number = column_counts.get(rule.column, 0)
            column_counts[rule.column] = number + 1
            slots.append(RuleSlot(rule, "column", number))
        else:
            slots.append(RuleSlot(rule, "frame", frame_count))
            frame_count += 1
    return tuple(slots)


# --- row predicates -----------------------------------------------------------------


def predicate(rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None) -> tuple[pl.Expr, bool]:
    """The row predicate of a row-level rule: ``(expr, ignore_na)``.

    ``expr`` is True where the row passes. With ``ignore_na`` a null result is a
    pass (pandera's ``ignore_na=True``); otherwise ``expr`` is never null. Built-in
    checks mirror ``pandera.backends.polars.builtin_checks`` exactly.
    """
    op, args, c = rule.op, rule.args, column
    if op is Op.NOT_NULL:
        missing = c.is_null()
        if dtype is not None and dtype.is_float():
            missing = missing | c.is_nan()
        return ~missing, False
    if op is Op.UNIQUE:
        return ~c.is_duplicated(), False
    if op is Op.MISSING:
        values = list(args[0])
        missing = c.is_null() | c.is_in(values).fill_null(False) if values else c.is_null()
        return ~missing, False
    if op is Op.EXPRESSION:
        return to_polars(args[0]), True
    if op is Op.MULTIPLE_OF:
        return (c % args[0]) == 0, True
    return builtin(op, args, c), True


def builtin(op: Op, args: tuple[Any, ...], c: pl.Expr) -> pl.Expr:
    """pandera's built-in element-wise check ``op`` as a polars expression (True = pass)."""
    if op is Op.EQ:
        return c.eq(args[0])
    if op is Op.NE:
        return c.ne(args[0])
    if op is Op.GT:
        return c.gt(args[0])
    if op is Op.GE:
        return c.ge(args[0])
    if op is Op.LT:
        return c.lt(args[0])
    if op is Op.LE:
        return c.le(args[0])
    if op is Op.IN_RANGE:
        lo, hi, include_min, include_max = args
        return (c.ge(lo) if include_min else c.gt(lo)).and_(c.le(hi) if include_max else c.lt(hi))
    if op is Op.ISIN:
        return c.is_in(list(args[0]))
    if op is Op.NOTIN:
        return c.is_in(list(args[0])).not_()
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
        if lo is None:
            return n.le(hi)
        return n.ge(lo) if hi is None else n.is_between(lo, hi)
    raise ValueError(f"operator {op.value!r} is not an element-wise check")


def failure_expr(rule: Rule, column: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    """A never-null Boolean expression, True where the row fails ``rule``."""
    expr, ignore_na = predicate(rule, column, dtype)
    return expr.eq_missing(False) if ignore_na else expr.not_()


# --- conformance --------------------------------------------------------------------


def _conform(name: str, src: pl.DataType, dst: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """``(conformed value, mismatch mask or None)`` for a column of dtype ``src`` declared ``dst``."""
    c = pl.col(name)
    present = c.is_not_null()
    if src == pl.Null:
        return c.cast(dst), None
    if src.is_numeric() and dst.is_numeric():
        out = c.cast(dst, strict=False)
        if src.is_float() and dst.is_float():
            bad = out.is_null() | (out.is_infinite() & c.is_finite())
        else:
            bad = out.cast(src, strict=False).ne_missing(c)
        return out, present & bad
    if src == pl.String and isinstance(dst, pl.Date):
        out = c.str.to_date("%Y-%m-%d", strict=False)
        return out, present & out.is_null()
    if isinstance(dst, pl.Datetime) and (src == pl.String or isinstance(src, pl.Datetime)):
        out = _to_datetime(c, src, dst)
        return out, present & out.is_null()
    if src in (pl.Categorical, pl.Enum) and dst == pl.String:
        return c.cast(pl.String), None
    if src == pl.String and isinstance(dst, (pl.Enum, pl.Categorical)):
        out = c.cast(dst, strict=False)
        return out, present & out.is_null()
    return pl.lit(None, dtype=dst), present


def _to_datetime(c: pl.Expr, src: pl.DataType, dst: pl.Datetime) -> pl.Expr:
    unit, tz = dst.time_unit, dst.time_zone

    def localize(naive: pl.Expr) -> pl.Expr:
        return naive.dt.replace_time_zone(tz, ambiguous="null", non_existent="null") if tz else naive

    def from_aware(aware: pl.Expr) -> pl.Expr:
        return (
            aware.dt.convert_time_zone(tz)
            if tz
            else aware.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        )

    if isinstance(src, pl.Datetime):
        cast = c.dt.cast_time_unit(unit)
        return from_aware(cast) if src.time_zone else localize(cast)
    text = c.str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T").str.replace(r"[Zz]$", "+00:00")
    parsed = [from_aware(text.str.to_datetime(f, time_unit=unit, strict=False)) for f in _ISO_AWARE]
    parsed += [localize(text.str.to_datetime(f, time_unit=unit, strict=False)) for f in _ISO_NAIVE]
    return pl.coalesce(parsed)


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Render values as strings the way pandera does (nested values as JSON)."""
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
        return pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    if dtype == pl.Object:
        return expr.map_elements(str, return_dtype=pl.String)
    if dtype == pl.Binary:
        return expr.bin.encode("hex")
    return expr.cast(pl.String)


def _redact(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_null()).then(pl.lit(None, dtype=pl.String)).otherwise(pl.lit(REDACTED))


# --- the compiled plan --------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    """The plan specialized to one input schema (cached per distinct batch schema)."""

    stage1: list[pl.Expr]  # conformance: casts, added columns, original copies, mismatch masks
    masks: dict[int, str]  # slot index -> mask column holding that rule's failure mask
    stage2: list[pl.Expr]  # the rule masks
    errors: dict[int, str]  # slot index -> why the rule cannot run on this input
    originals: dict[str, str]  # cast column -> column holding its original values
    input_schema: pl.Schema
    output_columns: list[str]
    missing: tuple[str, ...]
    extra: tuple[str, ...]


class CompiledPlan:
    """One schema object compiled for repeated, fused validation of polars batches."""

    def __init__(self, contract: Contract, schema_obj: SchemaObject) -> None:
        self.contract = contract
        self.schema_obj = schema_obj
        self.slots = rule_layout(schema_obj)
        self._declared: dict[str, Field] = {f.name: f for f in schema_obj.fields}
        self._redacted = schema_obj.redacted_columns
        self._cache: dict[tuple[tuple[str, pl.DataType], ...], _Prepared] = {}

    # -- per input schema -------------------------------------------------------

    def _prepare(self, schema: pl.Schema) -> _Prepared:
        key = tuple(schema.items())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        names = set(schema.names()) | set(self._declared)
        prefix = _PREFIX
        while any(n.startswith(prefix) for n in names):
            prefix = "_" + prefix
        steps: list[tuple[pl.Expr, pl.Expr]] = []  # (expression, fallback if it cannot run)
        originals: dict[str, str] = {}
        mismatch: dict[str, str] = {}
        conformed: dict[str, pl.DataType] = dict(schema.items())
        for i, f in enumerate(self.schema_obj.fields):
            null = pl.lit(None, dtype=f.dtype).alias(f.name)
            if f.name not in schema:
                steps.append((null, null))
            elif schema[f.name] != f.dtype:
                value, bad = _conform(f.name, schema[f.name], f.dtype)
                originals[f.name] = f"{prefix}o{i}"
                steps += [(pl.col(f.name).alias(originals[f.name]),) * 2, (value.alias(f.name), null)]
                if bad is not None:
                    mismatch[f.name] = f"{prefix}t{i}"
                    steps.append(
                        (bad.alias(mismatch[f.name]), pl.repeat(True, pl.len()).alias(mismatch[f.name]))
                    )
            conformed[f.name] = f.dtype
        empty = pl.DataFrame(schema=schema).lazy()
        stage1 = _runnable(empty, steps)
        probe = empty.with_columns(stage1) if stage1 else empty
        candidates: dict[int, tuple[pl.Expr, bool]] = {}
        masks: dict[int, str] = {}
        errors: dict[int, str] = {}
        for k, slot in enumerate(self.slots):
            rule = slot.rule
            if rule.op is Op.DTYPE:
                if rule.column in mismatch:
                    masks[k] = mismatch[str(rule.column)]
            elif not rule.is_batch_metric:
                try:
                    candidates[k] = self._predicate(rule, conformed)
                except Exception as exc:  # a rule that cannot run is reported, not raised
                    errors[k] = _error_text(exc)
        stage2: list[pl.Expr] = []
        for k, (pred, ignore_na) in _checked(probe, candidates, errors).items():
            masks[k] = f"{prefix}m{k}"
            stage2.append((pred.eq_missing(False) if ignore_na else pred.not_()).alias(masks[k]))
        declared = [f.name for f in self.schema_obj.fields]
        extra = tuple(n for n in schema.names() if n not in self._declared)
        prepared = _Prepared(
            stage1=stage1,
            masks=masks,
            stage2=stage2,
            errors=errors,
            originals=originals,
            input_schema=schema,
            output_columns=declared + list(extra),
            missing=tuple(n for n in declared if n not in schema),
            extra=extra,
        )
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = prepared
        return prepared

    def _predicate(self, rule: Rule, conformed: dict[str, pl.DataType]) -> tuple[pl.Expr, bool]:
        if rule.op is Op.EXPRESSION:
            return predicate(rule, pl.lit(None))
        if rule.column is None:
            raise ValueError(f"rule {rule.name!r} ({rule.op.value}) needs a column")
        if rule.column not in conformed:
            raise ValueError(f"column {rule.column!r} is not in the batch")
        return predicate(rule, pl.col(rule.column), conformed[rule.column])

    # -- public API ---------------------------------------------------------------

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """The batch with declared columns cast to their dtypes (null where a value
        does not conform, all-null where a column is missing), declared columns
        first in declared order, then the extra columns."""
        prepared = self._prepare(df.schema)
        lf = df.lazy().with_columns(prepared.stage1) if prepared.stage1 else df.lazy()
        return lf.select(prepared.output_columns).collect()

    def validate(self, df: pl.DataFrame) -> ValidationReport:
        """Validate one batch. Never raises on bad data: problems are in the report."""
        start = time.perf_counter()
        if isinstance(df, pl.LazyFrame):
            df = df.collect()
        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"validate() takes a polars DataFrame, not {type(df).__name__}")
        prepared = self._prepare(df.schema)
        errors = dict(prepared.errors)
        out = _run(df, prepared, errors)
        rows = out.height
        masks = {k: m for k, m in prepared.masks.items() if k not in errors}
        counts: dict[int, int] = {}
        if masks:
            totals = out.select(pl.col(list(masks.values())).sum()).row(0)
            counts = {k: int(n or 0) for k, n in zip(masks, totals, strict=True)}
        conformed = out.select(prepared.output_columns)
        checks, summary_cases, failed_rows = self._results(prepared, conformed, counts, errors)
        fail_cols = [masks[k] for k in failed_rows]
        gating = [masks[k] for k in failed_rows if self.slots[k].rule.gates_rows]
        if gating:
            valid = out.select(pl.any_horizontal(gating).not_().alias("valid")).to_series()
        else:
            valid = pl.repeat(True, rows, eager=True, dtype=pl.Boolean).alias("valid")
        if fail_cols:
            names = [pl.when(pl.col(masks[k])).then(pl.lit(self.slots[k].rule.name)) for k in failed_rows]
            violations = out.select(pl.concat_list(names).list.drop_nulls().alias("violations")).to_series()
        else:
            violations = pl.Series("violations", [[]], dtype=pl.List(pl.String)).new_from_index(0, rows)
        cases = self._failure_cases(
            df, out, prepared, masks=masks, failed_rows=failed_rows, summary=summary_cases
        )
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
            failure_cases=cases,
            missing_columns=prepared.missing,
            extra_columns=prepared.extra,
            elapsed_seconds=time.perf_counter() - start,
        )

    # -- report assembly -------------------------------------------------------------

    def _results(
        self, prepared: _Prepared, conformed: pl.DataFrame, counts: dict[int, int], errors: dict[int, str]
    ) -> tuple[list[CheckResult], list[tuple[int, dict[str, Any]]], list[int]]:
        rows = conformed.height
        checks: list[CheckResult] = []
        summary: list[tuple[int, dict[str, Any]]] = []
        failed_rows: list[int] = []
        for k, slot in enumerate(self.slots):
            rule = slot.rule
            failures, value, error = 0, None, errors.get(k)
            metric: float | int | None = None
            if rule.is_batch_metric and error is None:
                value, error = _batch_metric(rule, conformed, self.schema_obj.name)
                metric = value
                passed = value is not None and rule.threshold.allows(value)
                failures = int(not passed)
            elif error is None:
                failures = counts.get(k, 0)
                metric = (
                    failures
                    if rule.threshold.unit is Unit.ROWS
                    else (100.0 * failures / rows if rows else 0.0)
                )
                passed = rule.threshold.allows(metric)
                if rule.op is Op.DTYPE and rule.column in prepared.missing:
                    passed = False
            if error is not None:
                passed, metric = False, None
                summary.append((k, _case(slot, error)))
            elif not passed and (rule.is_batch_metric or not slot.per_row):
                summary.append((k, _case(slot, f"{metric:g}" if isinstance(metric, float) else str(metric))))
            if failures and not rule.is_batch_metric:
                failed_rows.append(k)
            checks.append(
                CheckResult(
                    name=rule.name,
                    column=rule.column,
                    check=rule.check,
                    severity=rule.severity,
                    failures=failures,
                    failure_rate=(failures / rows if rows and not rule.is_batch_metric else 0.0),
                    passed=passed,
                    value=metric,
                    threshold=rule.threshold.describe(),
                    dimension=rule.dimension,
                    gates_rows=rule.gates_rows,
                    error=error,
                )
            )
        return checks, summary, failed_rows

    def _failure_cases(
        self,
        df: pl.DataFrame,
        out: pl.DataFrame,
        prepared: _Prepared,
        *,
        masks: dict[int, str],
        failed_rows: list[int],
        summary: list[tuple[int, dict[str, Any]]],
    ) -> pl.DataFrame:
        head = [
            {
                "failure_case": n,
                "schema_context": FRAME_CONTEXT,
                "check": "column_in_dataframe",
                "rule": r.name,
            }
            for n in prepared.missing
            for r in (s.rule for s in self.slots)
            if r.op is Op.DTYPE and r.column == n
        ]
        parts: list[tuple[int, pl.LazyFrame]] = [(-1, pl.LazyFrame(head, schema=FAILURE_CASE_SCHEMA))]
        parts += [(k, pl.LazyFrame([case], schema=FAILURE_CASE_SCHEMA)) for k, case in summary]
        per_row = [k for k in failed_rows if self.slots[k].per_row]
        if per_row:
            index = f"{masks[per_row[0]]}_index"
            base = out.lazy().with_row_index(index)
            for k in per_row:
                slot = self.slots[k]
                value = self._case_value(slot.rule, df, prepared, out)
                parts.append(
                    (
                        k,
                        base.filter(pl.col(masks[k])).select(
                            failure_case=value,
                            schema_context=pl.lit(slot.context),
                            column=pl.lit(slot.rule.column, dtype=pl.String),
                            check=pl.lit(slot.rule.check),
                            check_number=pl.lit(slot.check_number, dtype=pl.Int32),
                            index=pl.col(index).cast(pl.Int32),
                            rule=pl.lit(slot.rule.name),
                        ),
                    )
                )
        parts.sort(key=lambda p: p[0])
        try:
            return pl.concat([p for _, p in parts], how="vertical").collect()
        except Exception:  # fall back to whatever part can be rendered
            frames = [empty_failure_cases()]
            for _, part in parts:
                try:
                    frames.append(part.collect())
                except Exception:
                    continue
            return pl.concat(frames, how="vertical")

    def _case_value(self, rule: Rule, df: pl.DataFrame, prepared: _Prepared, out: pl.DataFrame) -> pl.Expr:
        if rule.op is Op.EXPRESSION:
            fields = []
            for name in df.columns:
                src = pl.col(prepared.originals.get(name, name))
                fields.append((_redact(src) if name in self._redacted else src).alias(name))
            return pl.struct(fields).struct.json_encode() if fields else pl.lit("{}")
        assert rule.column is not None
        name = rule.column
        if rule.op is Op.DTYPE and name in prepared.originals:
            name = prepared.originals[name]
        expr = _as_text(pl.col(name), out.schema[name])
        return _redact(expr) if rule.column in self._redacted else expr


# --- helpers --------------------------------------------------------------------------


def _runnable(probe: pl.LazyFrame, steps: list[tuple[pl.Expr, pl.Expr]]) -> list[pl.Expr]:
    """The conformance expressions, each replaced by its fallback if it cannot run on this input."""
    try:
        probe.with_columns([e for e, _ in steps]).collect()
        return [e for e, _ in steps]
    except Exception:  # isolated below, expression by expression
        pass
    out: list[pl.Expr] = []
    for expr, fallback in steps:
        try:
            probe.select(expr).collect()
            out.append(expr)
        except Exception:
            out.append(fallback)
    return out


def _checked(
    probe: pl.LazyFrame, candidates: dict[int, tuple[pl.Expr, bool]], errors: dict[int, str]
) -> dict[int, tuple[pl.Expr, bool]]:
    """The predicates that run on this input and return booleans; the others go to ``errors``."""

    def problem(group: dict[int, tuple[pl.Expr, bool]]) -> str | None:
        try:
            frame = probe.select([p.alias(str(k)) for k, (p, _) in group.items()]).collect()
        except Exception as exc:
            return _error_text(exc)
        wrong = [(k, d) for k, d in frame.schema.items() if d not in (pl.Boolean, pl.Null)]
        return f"the rule evaluates to {wrong[0][1]}, not Boolean" if wrong else None

    if not candidates or problem(candidates) is None:
        return candidates
    good: dict[int, tuple[pl.Expr, bool]] = {}
    for k, item in candidates.items():
        error = problem({k: item})
        if error is None:
            good[k] = item
        else:
            errors[k] = error
    return good


def _run(df: pl.DataFrame, prepared: _Prepared, errors: dict[int, str]) -> pl.DataFrame:
    """The fused query; if it fails at run time, isolate the failing rules."""
    lf = df.lazy().with_columns(prepared.stage1) if prepared.stage1 else df.lazy()
    try:
        return lf.with_columns(prepared.stage2).collect() if prepared.stage2 else lf.collect()
    except Exception:  # isolated below
        pass
    try:
        base = lf.collect()
    except Exception as exc:  # conformance failed: every rule reports it
        for k in prepared.masks:
            errors[k] = _error_text(exc)
        return df
    good = []
    by_name = {m: k for k, m in prepared.masks.items()}
    for expr in prepared.stage2:
        try:
            base.lazy().select(expr).collect()
            good.append(expr)
        except Exception as exc:
            errors[by_name[expr.meta.output_name()]] = _error_text(exc)
    return base.with_columns(good) if good else base


def _batch_metric(rule: Rule, conformed: pl.DataFrame, object_name: str) -> tuple[float | None, str | None]:
    if rule.op is Op.ROW_COUNT:
        return conformed.height, None
    try:
        lf = conformed.lazy()
        ctx = pl.SQLContext(frames={object_name: lf, "batch": lf})
        result = ctx.execute(str(rule.args[0])).collect()
    except Exception as exc:  # a failing query is a failed check
        return None, _error_text(exc)
    if result.height == 0 or result.width == 0:
        return None, "the SQL query returned no rows"
    value = result.item(0, 0)
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)):
        return None, f"the SQL query returned {value!r}, not a number"
    return value, None


def _case(slot: RuleSlot, failure_case: str) -> dict[str, Any]:
    return {
        "failure_case": failure_case,
        "schema_context": FRAME_CONTEXT if slot.placement == "frame" else COLUMN_CONTEXT,
        "column": slot.rule.column,
        "check": slot.rule.check,
        "check_number": slot.check_number,
        "index": None,
        "rule": slot.rule.name,
    }


def _error_text(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")


def compile_plan(contract: Contract, schema: str | None = None) -> CompiledPlan:
    """Compile the schema object ``schema`` of ``contract`` (the only one if omitted)."""
    return CompiledPlan(contract, contract.schema(schema))
