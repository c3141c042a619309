"""The fused polars validation plan: the hot path of the stream workers.

:func:`compile_plan` compiles one schema object of a :class:`Contract` once;
:meth:`CompiledPlan.validate` then checks each micro-batch in one fused polars pass,
with no per-rule Python work over rows and no pass per failing rule:

1. after an optional conformance step (a no-op when the dtypes already match), one
   ``select`` computes the failure mask of every row-level rule at once, and the masks are
   counted. Uniqueness over text or composite keys yields the keys' 64-bit hashes instead:
   sorted (a fifth of the cost of ``is_duplicated``), a repeated hash marks candidate rows.
   A ``required`` rule over a column without NaN and without nulls (a count polars keeps
   per column) is left out of the pass. A pattern without a fast path over a column of few
   distinct values tests the values known to pass or fail (:mod:`~streams.validation.memo`),
   a ``str_length`` rule the byte lengths (:mod:`~streams.validation.settle`): the rows they
   leave open are checked by the rule's own expression after the pass;
2. a clean batch stops there. Otherwise the masks of the failing rules, as numpy arrays, give
   ``valid_mask``, ``violations`` (a one-byte code per row, computed in numpy, and a table of
   rule-name lists, gathered when read: :mod:`~streams.validation.rowlists`) and the description
   of the failure cases of the failing rows, rendered when read (:mod:`~streams.validation.cases`:
   each failing rule's values gathered at its rows and cast to text in eager Series operations, a
   row-level expression's row encoded as JSON once per row; the whole frame, or only the first
   cases of each rule; a few rows per rule, the worker's samples, in plain Python, byte for byte
   as polars renders them, and listed as the dicts its events read without building a frame
   (``ValidationReport.case_records``):
   :mod:`~streams.validation.render`, :mod:`~streams.validation.pyrender`).
   Past the pass, the failure path plans no query but the JSON encoding: at a hundred rows a
   polars query costs more to plan than to run. Uniqueness candidates (by hash) are compared by
   key over those rows only (text keys: with their neighbours of the same hash).

The modules: :mod:`~streams.validation.predicates` (rule layout and row predicates),
:mod:`~streams.validation.regex` (patterns evaluated without a regex),
:mod:`~streams.validation.memo` (patterns evaluated once per distinct value),
:mod:`~streams.validation.conform` (conformance), :mod:`~streams.validation.failures`
(results and failure cases), :mod:`~streams.validation.render` (failure cases rendered) and
:mod:`~streams.validation.report` (the report).

Semantics follow pandera's polars backend (the reference:
:mod:`streams.validation.pandera`) rule by rule. Deliberate differences:

* **Conformance.** A column whose dtype differs from ``Field.dtype`` is cast with
  ``strict=False``: numeric to numeric, String to Date/Datetime (ISO-8601)/Time,
  Datetime to another unit/time zone (naive values are taken to be in the target
  zone), Categorical/Enum to String and String to Enum/Categorical. Every other
  pair (String to numeric, numeric to String, Boolean to/from numeric, ...) is a
  mismatch for every non-null value. A value that is non-null before the cast and
  null (or different: ``1.5`` to Int64, ``300`` to Int8) after it fails the
  column's ``dtype`` rule **per row**, with the offending value as
  ``failure_case`` and the row ``index``. pandera (without ``coerce``) reports one
  column-level ``dtype('...')`` failure whose ``failure_case`` is the observed
  dtype and whose ``index`` is null. The other rules then see the conformed
  column (null where the value did not conform); ``not_nullable`` and
  ``missing_values`` do not count those rows again (a dtype failure is not a null).
* **Missing columns** of required fields are reported like pandera
  (``column_in_dataframe``, ``DataFrameSchema`` context, null column and index,
  failing the column's dtype rule) and then treated as all-null, so they also fail
  ``not_nullable`` on every row (pandera skips the column's other checks). An
  absent optional field passes its dtype rule (it is listed in ``missing_columns``).
* **Uniqueness** ignores nulls (pandera counts repeated nulls as duplicates); the
  rule's value is ODCS's ``duplicateValues``, rows minus distinct values, while every
  row of a duplicated group fails the rule. Composite keys are one rule over the tuple.
* **Thresholded rules** (not zero-tolerance) and batch metrics that fail report
  one summary case whose ``failure_case`` is the metric (pandera: the error of
  the scalar check); the failing rows of thresholded rules are in ``violations``.
* A rule that cannot be evaluated (type error, unknown column, bad regex, SQL
  error) fails with ``CheckResult.error`` set and one failure case carrying the
  error, as pandera does; other rules are unaffected. With ``on_rule_error``
  ``quarantine`` (the default) every row fails an error-severity rule that could not
  run (fail closed: it is in the rows' ``gating_violations``). Error messages over
  classified columns are redacted. ``validate`` never raises on data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from streams.contracts.model import Contract, Field, Op, SchemaObject, Severity
from streams.validation.cases import BatchRows, FailureCases
from streams.validation.conform import conform_batch, conform_column
from streams.validation.failures import (
    Reporter,
    batch_metric,
    duplicates,
    error_text,
    errored,
    evaluate,
    probe,
    redact_error,
    repeated_rows,
    sql_expressions,
    sql_metric,
    verify_rows,
)
from streams.validation.memo import PatternMemo, settle_memos
from streams.validation.predicates import (
    COLUMN_CONTEXT,
    FRAME_CONTEXT,
    RuleSlot,
    builtin,
    cost,
    duplicate_candidates,
    failure_expr,
    pattern_paths,
    plan_rules,
    predicate,
    rule_layout,
    unique_key,
)
from streams.validation.regex.bytewise import ByteCheck
from streams.validation.report import ValidationReport, bool_array, concat_cases, lazy_verdicts
from streams.validation.settle import length_bounds, settle_all

__all__ = [
    "COLUMN_CONTEXT",
    "FRAME_CONTEXT",
    "CompiledPlan",
    "RuleSlot",
    "batch_metric",
    "builtin",
    "compile_plan",
    "failure_expr",
    "plan_rules",
    "predicate",
    "rule_layout",
    "sql_metric",
]

_PREFIX = "__qs_"
_CACHE_SIZE = 64
_evaluate = evaluate  # the name before the split into modules


@dataclass(slots=True)
class _Prepared:
    """The plan specialized to one input schema and size class (see ``CompiledPlan._prepare``)."""

    stage1: list[pl.Expr]  # conformance: casts, added columns, original copies, mismatch masks
    fails: dict[int, pl.Expr]  # slot -> failure mask over the conformed frame (null = pass)
    counts: dict[int, pl.Expr]  # slot -> its mask in the one pass (cheap ones first; uniqueness: candidates)
    errors: dict[int, str]  # slot -> why the rule cannot run on this input
    originals: dict[str, str]  # cast column -> column holding its original values
    temporal: dict[str, tuple[str, pl.Datetime]]  # text column parsed per batch -> (mismatch mask, dtype)
    prefix: str  # of internal column names, distinct from every batch column
    output_columns: list[str]
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    hashed: frozenset[int] = frozenset()  # uniqueness slots whose pass-1 column is the hashes of their keys
    nulls: dict[int, str] = field(default_factory=dict)  # `required` slots counted by the column's null count
    tables: dict[tuple[str, ...], Any] = field(default_factory=dict)  # violations tables and selects (verdicts)
    memos: frozenset[int] = frozenset()  # pattern slots over String columns without a fast path
    bytewise: dict[int, ByteCheck] = field(default_factory=dict)  # pattern slots whose pass gives the bytes
    lengths: frozenset[int] = frozenset()  # str_length slots whose pass column is three-state (settle)
    sql: dict[int, pl.Expr] = field(default_factory=dict)  # SQL slots computed in the pass (sql_expression)


class CompiledPlan:
    """One schema object compiled once for repeated, fused validation of polars batches."""

    def __init__(self, contract: Contract, schema_obj: SchemaObject, on_rule_error: str = "quarantine") -> None:
        if on_rule_error not in ("quarantine", "pass"):
            raise ValueError(f"on_rule_error must be 'quarantine' or 'pass', not {on_rule_error!r}")
        self.contract = contract
        self.schema_obj = schema_obj
        self.on_rule_error = on_rule_error
        self.reporter = Reporter.of(schema_obj)
        self.slots = self.reporter.slots
        self._cache: dict[tuple[tuple[tuple[str, pl.DataType], ...], int | None], _Prepared] = {}
        self._memos: dict[int, PatternMemo] = {}  # slot -> passing values (streams.validation.memo)
        #: keep the last batch validated and its conformed frame for :meth:`conform` of that very frame (the
        #: stream-time stage conforms the batch the binding just validated: once, not twice; issue 13)
        self.remember_conformed = False
        self._conformed_last: tuple[pl.DataFrame, pl.DataFrame] | None = None

    def _prepare(self, schema: pl.Schema, rows: int | None = None) -> _Prepared:
        """The plan for batches of ``schema``, cached per schema and size class (the largest power
        of two not above ``rows``, the batch height): among equal expressions, the cheapest for
        the size is picked (see :func:`streams.validation.regex.fast_contains`)."""
        size = _size_class(rows)
        key = (tuple(schema.items()), size)
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
                value, bad = conform_column(f.name, schema[f.name], f.dtype)
                originals[f.name] = f"{prefix}o{i}"
                steps += [(pl.col(f.name).alias(originals[f.name]),) * 2, (value.alias(f.name), null)]
                if bad is not None:
                    mismatch[f.name] = name = f"{prefix}t{i}"
                    steps.append((bad.alias(name), pl.col(f.name).is_not_null().alias(name)))
        empty = pl.DataFrame(schema=schema)
        stage1 = [e if not probe(empty, [e]) else fallback for e, fallback in steps]
        probe_frame = empty.with_columns(stage1).with_columns(
            e for n, (m, dtype) in temporal.items() for e in (pl.lit(None, dtype).alias(n), pl.lit(False).alias(m))
        )
        conformed = probe_frame.schema
        errors: dict[int, str] = {}
        fails: dict[int, pl.Expr] = {}
        for k, slot in enumerate(self.slots):
            rule, column = slot.rule, str(slot.rule.column)
            if rule.op is Op.DTYPE and column in mismatch:
                fails[k] = pl.col(mismatch[column])
            elif rule.op is not Op.DTYPE and not rule.is_batch_metric:
                try:
                    needed = rule.key_columns or (() if rule.op is Op.EXPRESSION else (column,))
                    absent = [n for n in needed if n not in conformed]
                    if absent:
                        raise ValueError(f"column {absent[0]!r} is not in the batch")
                    dtype = conformed.get(column)
                    fails[k] = predicate(rule, pl.col(column), dtype, size)[0].not_()
                    if rule.op in (Op.NOT_NULL, Op.MISSING) and column in mismatch:
                        # a value failing its dtype is a dtype failure, not also a null
                        fails[k] = fails[k] & pl.col(mismatch[column]).not_()
                except Exception as exc:  # a rule that cannot run is reported, not raised
                    errors[k] = error_text(exc)
        if probe(probe_frame, list(fails.values()), select=True):
            for k in list(fails):
                if (error := probe(probe_frame, [fails[k]], select=True)) is not None:
                    errors[k] = error
                    del fails[k]
        counts = dict(fails)
        hashed = set()
        for k, slot in enumerate(self.slots):
            if slot.rule.op is Op.UNIQUE and k in counts:
                column = str(slot.rule.column)
                counts[k], exact = duplicate_candidates(slot.rule, pl.col(column), conformed.get(column))
                if not exact:
                    hashed.add(k)
                    values, present = unique_key(slot.rule, pl.col(column))
                    counts[k] = pl.when(present).then(values.hash())
        checks, memos = pattern_paths(self.slots, list(counts), conformed, size)
        counts.update((k, check.expr(pl.col(str(self.slots[k].rule.column)))) for k, check in checks.items())
        lengths = {k: e for k in counts if (e := length_bounds(self.slots[k].rule, conformed)) is not None}
        counts.update(lengths)  # three-state: byte lengths decide (streams.validation.settle)
        # cheap expressions first: polars balances its threads better (a third faster at 100k rows)
        weight = {k: cost(self.slots[k].rule, conformed.get(str(self.slots[k].rule.column)), size) for k in counts}
        counts = {k: counts[k] for k in sorted(counts, key=lambda k: (weight[k], k))}
        declared = list(fields)
        extra = tuple(n for n in schema.names() if n not in fields)
        missing = tuple(n for n in declared if n not in schema)
        output = [*declared, *extra]
        prepared = _Prepared(stage1, fails, counts, errors, originals, temporal, prefix, output, missing, extra)
        prepared.hashed, prepared.bytewise = frozenset(hashed), checks
        prepared.nulls = {  # `required` on a column without NaN or dtype failures: its null count is known
            k: str(slot.rule.column)
            for k, slot in enumerate(self.slots)
            if slot.rule.op is Op.NOT_NULL and k in counts and slot.rule.column not in mismatch
            and not (conformed.get(str(slot.rule.column)) or pl.Null()).is_float()
        }  # fmt: skip
        prepared.memos, prepared.lengths = memos, frozenset(lengths)
        prepared.sql = sql_expressions(self.slots, probe_frame.select(output), self.schema_obj.name)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = prepared
        return prepared

    def _conformed(self, df: pl.DataFrame, prepared: _Prepared) -> tuple[pl.DataFrame, str | None]:
        """The conformed batch, or an all-null one and the error if conformance fails at run time."""
        try:
            return self._conform(df, prepared), None
        except Exception as exc:  # never seen in tests; reported by every row rule
            nulls = (pl.lit(None, dtype=f.dtype).alias(f.name) for f in self.schema_obj.fields)
            return df.with_columns(nulls), error_text(exc)

    def _conform(self, df: pl.DataFrame, prepared: _Prepared) -> pl.DataFrame:
        return conform_batch(df, prepared.stage1, prepared.temporal, prepared.originals)

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """The batch cast to the declared dtypes: null where a value does not conform,
        all-null where a column is missing; declared columns first, then extra ones. The very frame last
        validated (with ``remember_conformed``) is not conformed again: its conformed frame is taken."""
        prepared = self._prepare(df.schema, df.height)
        last, self._conformed_last = self._conformed_last, None
        base = last[1] if last is not None and last[0] is df else self._conformed(df, prepared)[0]
        return base.select(prepared.output_columns)

    def validate(self, df: pl.DataFrame) -> ValidationReport:
        """Validate one batch. Never raises on bad data: every problem is in the report."""
        start = time.perf_counter()
        if isinstance(df, pl.LazyFrame):
            df = df.collect()
        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"validate() takes a polars DataFrame, not {type(df).__name__}")
        prepared = self._prepare(df.schema, df.height)
        errors = dict(prepared.errors)
        base, problem = self._conformed(df, prepared)
        self._conformed_last = (df, base) if self.remember_conformed else None
        if problem is not None:  # its message may quote a value of any column
            problem = redact_error(problem, self.reporter.redacted) if self.reporter.redacted else problem
            errors.update(dict.fromkeys(prepared.fails, problem))
        counts, arrays, measured, fused = self._failures(base, prepared, errors)
        reporter = self.reporter
        measured.update(
            (k, duplicates(base, arrays[k], self.slots[k].rule))
            for k in arrays
            if k in reporter.uniqueness and k not in measured
        )
        conformed = base.select(prepared.output_columns) if base is not df else df
        checks, summary = reporter.results(prepared.missing, conformed, counts, errors, measured, fused)
        failing = [(arrays[k], self.slots[k].rule.name, reporter.gates[k]) for k in arrays]
        if self.on_rule_error == "quarantine":  # fail closed: the rows of a rule that cannot run fail it
            broken = [k for k, c in enumerate(checks) if c.error is not None and c.severity is Severity.ERROR]
            if broken:
                every = np.ones(base.height, dtype=np.bool_)
                failing += [(every, self.slots[k].rule.name, True) for k in broken]
                checks = [
                    errored(c, base.height, self.slots[k].rule.is_batch_metric) if k in broken else c
                    for k, c in enumerate(checks)
                ]
        valid, violations, gating = lazy_verdicts(base.height, failing, prepared.tables)
        per_row = [(arrays[k], k) for k in arrays if reporter.per_row[k]]
        rows_cases = BatchRows(reporter, df, base, prepared.originals, per_row) if per_row else None
        rows, valid_rows = base.height, int(valid.sum())
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
            gating_violations=gating,
            failure_cases=FailureCases.of_batch(concat_cases(summary) if summary else None, rows_cases),
            missing_columns=prepared.missing,
            extra_columns=prepared.extra,
            elapsed_seconds=time.perf_counter() - start,
        )

    def _failures(
        self, base: pl.DataFrame, prepared: _Prepared, errors: dict[int, str]
    ) -> tuple[dict[int, int], dict[int, np.ndarray], dict[int, int], dict[int, Any]]:
        """One pass computes the failure mask of every row rule that runs, counted in the same frame;
        a uniqueness rule over text or composite keys gets the 64-bit hashes of its keys instead, whose
        repeats (found by sorting) are the candidate rows, checked over those rows only.
        Returns the failing-row counts and the mask of each failing rule (slot -> numpy Boolean array,
        in slot order): violations and failure cases come from them; and the
        ``duplicateValues`` of the uniqueness rules checked over their candidates."""
        # a `required` rule over a column with no null (a count polars keeps) has nothing to compute
        held = [k for k, name in prepared.nulls.items() if k not in errors and not base.get_column(name).null_count()]
        live = [k for k in prepared.counts if k not in errors and k not in held]
        exprs = {k: prepared.counts[k] for k in live} | (prepared.sql if base.height else {})
        memos = {k: self._memos.setdefault(k, PatternMemo(str(self.slots[k].rule.column))) for k in prepared.memos}
        memoized: dict[int, bool] = {}  # slot -> whether its pass expression is three-state (see PatternMemo)
        for k, memo in memos.items():
            if k in exprs and (expr := memo.candidates()) is not None:
                exprs[k], memoized[k] = expr, memo.three_state
        found = evaluate(base, exprs, errors)  # the one pass over the batch
        fused = {k: found.get_column(str(k))[0] for k in prepared.sql if k in exprs and errors.pop(k, None) is None}
        live = [k for k in live if k not in errors]
        plain = [k for k in live if k not in prepared.hashed and k not in prepared.bytewise]
        counts = {k: int(found.get_column(str(k)).sum() or 0) for k in plain}  # 4x cheaper than a select
        counts.update(dict.fromkeys(held, 0))
        columns = {k: found.get_column(str(k)) for k in plain if counts[k]}
        for k in [k for k in live if k in prepared.bytewise]:  # the bytes of fixed-width patterns
            mask = prepared.bytewise[k].fails(base.get_column(str(self.slots[k].rule.column)), found.get_column(str(k)))
            counts[k] = int(mask.sum())
            if counts[k]:
                columns[k] = mask
        lengths = {k: (str(self.slots[k].rule.column), prepared.fails[k]) for k in live if k in prepared.lengths}
        settle_all(base, found, counts, columns, lengths)  # lengths the bytes leave open: by characters
        live_memos = {k: memos[k] for k in live if k in memos}
        settle_memos(live_memos, memoized, base, found, counts, columns, prepared.fails)  # values not known: regex
        measured: dict[int, int] = {}
        exact: dict[int, np.ndarray] = {}  # uniqueness masks found as numpy arrays
        for k in [k for k in live if k in prepared.hashed]:  # repeated hashes, then their keys
            counts[k] = 0
            hashes = found.get_column(str(k))
            values = None if hashes.null_count() else hashes.to_numpy()  # (read once: sorted, then the candidates')
            candidates = repeated_rows(hashes, values)
            if candidates is None:
                continue
            try:
                dup, measured[k] = verify_rows(base, candidates, self.slots[k].rule, hashes, values)
            except Exception as exc:  # as a rule that cannot run
                errors[k] = error_text(exc)
                del counts[k]
                continue
            counts[k] = int(dup.sum())
            if counts[k]:
                exact[k] = dup
        arrays = {k: exact[k] if k in exact else bool_array(columns[k]) for k in sorted({*columns, *exact})}
        return counts, arrays, measured, fused


def _size_class(rows: int | None) -> int | None:
    """The largest power of two not above ``rows`` (0 for none; None when unknown, taken as large)."""
    return None if rows is None else 1 << (rows.bit_length() - 1) if rows else 0


def compile_plan(contract: Contract, schema: str | None = None, on_rule_error: str = "quarantine") -> CompiledPlan:
    """Compile the schema object ``schema`` of ``contract`` (the only one if omitted).

    ``on_rule_error`` (``STREAMS_ON_RULE_ERROR``): ``quarantine`` (fail closed, the default) makes
    every row of a batch fail an error-severity rule that cannot be evaluated on it (the check's
    ``error`` says why; the rows are invalid, listed in ``gating_violations``); ``pass`` only
    reports the error verdict."""
    return CompiledPlan(contract, contract.schema(schema), on_rule_error)
