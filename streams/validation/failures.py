"""Evaluation guards, batch metrics and the materialization of results and failure cases.

Everything here turns counts and failure masks computed by the fused plan
(:mod:`streams.validation.engine`) into :class:`CheckResult` objects and pandera-shaped
failure cases; nothing raises on data (a rule that cannot run is reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from streams.contracts.expressions import columns as expression_columns
from streams.contracts.model import Op, Rule, SchemaObject, Unit
from streams.contracts.rules import sql_reads
from streams.validation.predicates import FRAME_CONTEXT, RuleSlot, rule_layout, unique_key
from streams.validation.report import REDACTED, CheckResult, as_text, case_columns, redact, row_cases


def error_text(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")


def redact_error(error: str, columns: frozenset[str] | set[str]) -> str:
    """``error`` without its message, which may quote values of the classified ``columns``
    (a failing CAST prints the value): the exception type and why it is hidden."""
    kind = error.split(":", 1)[0] if ":" in error else "error"
    return f"{kind}: {REDACTED} (the message may carry values of classified column(s) {', '.join(sorted(columns))})"


def duplicates(frame: pl.DataFrame, mask: str, rule: Rule) -> int:
    """ODCS ``duplicateValues`` of a failing uniqueness rule: rows of the duplicated groups
    (``mask``) minus their distinct keys, i.e. rows - distinct over the non-null keys."""
    key, _ = unique_key(rule, pl.col(str(rule.column)))
    rows, distinct = frame.lazy().filter(pl.col(mask)).select(pl.len(), key.n_unique()).collect().row(0)
    return int(rows) - int(distinct)


def repeated_hashes(hashes: pl.Series) -> pl.Series | None:
    """The rows whose (non-null) hash occurs more than once, or None when no hash repeats (a
    sort of the hashes costs about a fifth of ``is_duplicated``)."""
    nulls = hashes.null_count()
    values = np.sort(hashes.drop_nulls().to_numpy() if nulls else hashes.to_numpy())
    same = values[1:] == values[:-1]
    if not same.any():
        return None
    repeated = np.unique(values[1:][same])
    if nulls:
        return hashes.is_in(pl.Series(repeated).implode()).fill_null(False)
    return pl.Series(hashes.name, np.isin(hashes.to_numpy(), repeated))  # a third of is_in's cost


def verify_duplicates(frame: pl.DataFrame, candidates: pl.Series, rule: Rule) -> tuple[pl.Series, int]:
    """The exact failure mask of a uniqueness rule from its candidate mask (rows whose key hash is
    duplicated, see :func:`~streams.validation.predicates.duplicate_candidates`), and its ODCS
    ``duplicateValues`` (rows of the duplicated groups minus their distinct keys): the candidates'
    keys compared as they are, over those rows only."""
    # the rows as numpy: a sixth of fill_null + arg_true's cost (two queries) at 10k rows
    rows = np.flatnonzero(candidates.to_numpy()) if not candidates.null_count() else candidates.arg_true().to_numpy()
    at = pl.Series(rows, dtype=pl.UInt32)
    names = rule.key_columns or (str(rule.column),)
    if len(names) == 1:  # no select for one column
        keys = frame.get_column(names[0]).gather(at)
    else:
        keys = frame.select(unique_key(rule, pl.col(names[0]))[0].gather(at)).to_series()
    key = pl.col("k")
    # one call: the repeated keys, and how many distinct ones (a scalar, broadcast)
    out = keys.to_frame("k").select(
        key.is_duplicated().alias("r"), key.filter(key.is_duplicated()).n_unique().alias("n")
    )
    repeated = out.to_series(0).to_numpy()
    mask = np.zeros(frame.height, dtype=np.bool_)
    if not repeated.any():
        return pl.Series(candidates.name, mask), 0
    mask[rows[repeated]] = True
    return pl.Series(candidates.name, mask), int(repeated.sum()) - int(out.to_series(1)[0])


def errored(check: CheckResult, rows: int, batch_metric: bool) -> CheckResult:
    """``check`` of a rule that could not run and whose rows are failed (fail closed): every
    row of the batch fails it (a batch metric keeps its count of 1)."""
    if batch_metric:
        return check
    return replace(check, failures=rows, failure_rate=1.0 if rows else 0.0)


def probe(df: pl.DataFrame, exprs: list[pl.Expr], select: bool = False) -> str | None:
    """Why ``exprs`` cannot run on ``df`` (predicates must be Boolean), or None."""
    try:
        out = df.select(exprs) if select else df.with_columns(exprs)
    except Exception as exc:
        return error_text(exc)
    wrong = [d for d in out.schema.values() if d not in (pl.Boolean, pl.Null)] if select else []
    return f"the rule evaluates to {wrong[0]}, not Boolean" if wrong else None


def evaluate(df: pl.DataFrame, exprs: dict[int, pl.Expr], errors: dict[int, str], add: bool = False) -> pl.DataFrame:
    """``df.select`` (or ``with_columns``) of ``exprs`` in one fused pass; expressions that
    fail at run time are isolated, reported in ``errors`` and left out. ``select`` names
    each output after its key."""
    named = {k: e if add else e.alias(str(k)) for k, e in exprs.items()}
    try:
        return df.with_columns(named.values()) if add else df.select(named.values())
    except Exception:  # isolated below
        pass
    for k, expr in list(named.items()):
        try:
            df.select(expr)
        except Exception as exc:
            errors[k] = error_text(exc)
            del named[k]
    return df.with_columns(named.values()) if add else df.select(named.values())


def sql_metric(query: str, batch: pl.LazyFrame, object_name: str) -> float:
    """The scalar result of ``query`` over ``batch``, registered under ``object_name`` and ``batch``.

    Raises (a polars error, or ValueError when the result is not one number).
    """
    result = pl.SQLContext(frames={object_name: batch, "batch": batch}).execute(query).collect(engine="in-memory")
    return _number(result.item(0, 0) if result.height and result.width else None)


def _number(value: Any) -> float:
    if isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, (float, Decimal)):
        return float(value)
    raise ValueError(f"the SQL query returned {value!r}, not a number")


def sql_expression(rule: Rule, frame: pl.DataFrame, object_name: str) -> pl.Expr | None:
    """A SQL rule's query as one expression, to join the fused pass (no query planned and run per
    batch), or None: only when polars plans the query over ``frame`` (empty, of the conformed
    schema) exactly as the ``select`` of its projection, so both compute the same value (a single
    projection of the batch, without clauses)."""
    if rule.op is not Op.SQL:
        return None
    import sqlglot

    from streams.contracts.sql import DIALECT

    query = str(rule.args[0])
    try:
        tree = sqlglot.parse_one(query, read=DIALECT)
        if not isinstance(tree, sqlglot.exp.Select) or len(tree.expressions) != 1:
            return None
        expr = pl.sql_expr(tree.expressions[0].sql(dialect=DIALECT))
        lazy = frame.lazy()
        planned = pl.SQLContext(frames={object_name: lazy, "batch": lazy}).execute(query).explain()
        return expr if lazy.select(expr).explain() == planned else None
    except Exception:  # not of that shape: the query runs on its own
        return None


def sql_expressions(slots: tuple[RuleSlot, ...], frame: pl.DataFrame, object_name: str) -> dict[int, pl.Expr]:
    """The SQL rules (slot -> expression) that the fused pass computes (see :func:`sql_expression`)."""
    exprs = {k: sql_expression(slot.rule, frame, object_name) for k, slot in enumerate(slots)}
    return {k: e for k, e in exprs.items() if e is not None}


def batch_metric(
    rule: Rule, conformed: pl.DataFrame, object_name: str, fused: Any = None
) -> tuple[float | None, str | None]:
    """The metric of a batch-level rule, or why it cannot be computed. ``fused``: a SQL query's
    value computed in the fused pass (see :func:`sql_expression`), or None (the query runs here)."""
    if rule.op is Op.ROW_COUNT:
        return conformed.height, None
    try:
        if fused is not None:
            return _number(fused), None
        return sql_metric(str(rule.args[0]), conformed.lazy(), object_name), None
    except Exception as exc:  # a failing query is a failed check
        return None, error_text(exc)


def row_rule_metric(rule: Rule, failures: int, rows: int) -> float:
    """The metric a row rule is judged on: its failing rows, or their percentage of ``rows``.

    The one place this is defined; the verdict is ``rule.threshold.allows(metric)``.
    """
    if rule.threshold.unit is Unit.PERCENT:
        return 100.0 * failures / rows if rows else 0.0
    return failures


@dataclass(frozen=True, slots=True)
class Reporter:
    """The per-rule constants of a compiled schema object, and the report parts built from them."""

    schema_obj: SchemaObject
    slots: tuple[RuleSlot, ...]
    thresholds: tuple[str, ...]
    per_row: tuple[bool, ...]
    gates: tuple[bool, ...]
    clean: dict[int, CheckResult]  # the result of each row rule on a batch where no row fails it
    redacted: frozenset[str]
    reads: tuple[frozenset[str], ...]  # per slot: the classified columns the rule reads
    hidden: tuple[bool, ...]  # per slot: the rule's value would show a classified value (SQL)
    required: frozenset[str]  # fields that must be present (an absent optional field passes)
    uniqueness: frozenset[int]  # slots of uniqueness rules (their value is rows - distinct)
    cases: dict[tuple[Any, ...], tuple[pl.Expr, pl.Expr]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, schema_obj: SchemaObject) -> Reporter:
        slots = rule_layout(schema_obj)
        thresholds = tuple(s.rule.threshold.describe() for s in slots)
        gates = tuple(s.rule.gates_rows for s in slots)
        clean = {
            k: CheckResult(
                *(r.name, r.column, r.check, r.severity, 0, 0.0, r.threshold.allows(0), 0),
                *(thresholds[k], r.dimension, gates[k]),
            )
            for k, r in enumerate(s.rule for s in slots)
            if not r.is_batch_metric and r.threshold.allows(0)
        }
        per_row = tuple(s.per_row for s in slots)
        redacted = schema_obj.redacted_columns
        read = [_columns_read(s.rule, schema_obj) for s in slots]
        reads = tuple(frozenset(columns) & redacted for columns, _ in read)
        hidden = tuple(bool(shown & redacted) for _, shown in read)
        required = frozenset(f.name for f in schema_obj.fields if f.required)
        uniqueness = frozenset(k for k, s in enumerate(slots) if s.rule.op is Op.UNIQUE)
        return cls(
            *(schema_obj, slots, thresholds, per_row, gates, clean, redacted),
            *(reads, hidden, required, uniqueness),
        )

    def results(
        self,
        missing: tuple[str, ...],
        conformed: pl.DataFrame,
        counts: dict[int, int],
        errors: dict[int, str],
        measured: dict[int, int] | None = None,
        fused: dict[int, Any] | None = None,
    ) -> tuple[list[CheckResult], list[tuple[Any, ...]]]:
        """Per-rule results, plus the schema-level and summary failure cases (as tuples).

        ``measured``: the value (in rows) of rules whose metric is not their failing-row count
        (uniqueness: rows - distinct); ``fused``: the values of SQL rules computed in the pass.
        An absent optional field passes its dtype rule."""
        rows = conformed.height
        measured, fused = measured or {}, fused or {}
        absent = [name for name in missing if name in self.required]
        checks: list[CheckResult] = []
        cases: list[tuple[Any, ...]] = [
            (name, FRAME_CONTEXT, None, "column_in_dataframe", None, None, slot.rule.name)
            for name in absent
            for slot in self.slots
            if slot.rule.op is Op.DTYPE and slot.rule.column == name
        ]
        for k, slot in enumerate(self.slots):
            rule, error = slot.rule, errors.get(k)
            failures, metric = counts.get(k, 0), None
            if not failures and error is None and k in self.clean and rule.column not in absent:
                checks.append(self.clean[k])
                continue
            if error is None and rule.is_batch_metric:
                metric, error = batch_metric(rule, conformed, self.schema_obj.name, fused.get(k))
            elif error is None:
                metric = row_rule_metric(rule, measured.get(k, failures), rows)
            if error is not None and self.reads[k]:
                error = redact_error(error, self.reads[k])
            passed = error is None and metric is not None and rule.threshold.allows(metric)
            if rule.op is Op.DTYPE and rule.column in absent:
                passed = False
            elif error is not None or (not passed and not self.per_row[k]):
                shown = error if error is not None else REDACTED if self.hidden[k] else f"{metric:g}"
                context = slot.context if error is not None else FRAME_CONTEXT
                cases.append((shown, context, rule.column, rule.check, slot.check_number, None, rule.name))
            if rule.is_batch_metric:
                failures = int(not passed)
            rate = failures / rows if rows and not rule.is_batch_metric else 0.0
            metric = None if self.hidden[k] else metric
            result = (rule.name, rule.column, rule.check, rule.severity, failures, rate, passed, metric)
            checks.append(CheckResult(*result, self.thresholds[k], rule.dimension, self.gates[k], error))
        return checks, cases

    def row_cases(
        self,
        df: pl.DataFrame,
        frame: pl.DataFrame,
        originals: dict[str, str],
        failing: list[tuple[str, int]],
        prefix: str = "__qs_",
    ) -> pl.DataFrame:
        """One failure case per failing row of each zero-tolerance rule.

        ``failing`` holds ``(mask column of frame, slot)``. The expressions of each rule's cases
        are built once per rule, mask and input (the rendered column and its dtype; the batch's
        columns for a row-level expression or key). Row-level expressions all show the batch's row
        as JSON: when rows fail more than one, each such row is rendered once (see
        :meth:`_shared_rows`; ``prefix`` starts the names of its columns, distinct from the batch's).
        """
        expressions = [(mask, k) for mask, k in failing if self.slots[k].rule.op is Op.EXPRESSION]
        frame, shared = self._shared_rows(df, frame, originals, expressions, prefix)
        return row_cases(frame, [self.case_spec(df, frame.schema, originals, mask, k, shared) for mask, k in failing])

    def case_spec(
        self, df: pl.DataFrame, schema: pl.Schema, originals: dict[str, str], mask: str, k: int,
        shared: str | None = None,
    ) -> tuple[str, tuple[pl.Expr, pl.Expr], tuple[Any, ...]]:  # fmt: skip
        """The spec of :func:`~streams.validation.cases.row_cases` of slot ``k`` failing on ``mask`` (a
        row-level expression's rows read from the column ``shared`` when given, see :meth:`_shared_rows`)."""
        slot = self.slots[k]
        rule, name = slot.rule, str(slot.rule.column)
        mine = shared is not None and rule.op is Op.EXPRESSION
        if mine:
            key: tuple[Any, ...] = (k, mask, shared)
        elif rule.op is Op.EXPRESSION or rule.key_columns:
            names = rule.key_columns or tuple(df.columns)
            key = (k, mask, tuple((n, originals.get(n, n)) for n in names))
        else:
            source = originals.get(name, name) if rule.op is Op.DTYPE else name
            key = (k, mask, source, schema[source])
        columns = self.cases.get(key)
        if columns is None:
            if mine:  # the rows rendered once, filtered
                value = pl.col(str(shared)).filter(pl.col(mask))
            else:
                value = self._case_value(rule, df, schema, originals, mask)
            columns = self._keep(key, case_columns(value, mask))
        return mask, columns, (slot.context, rule.column, rule.check, slot.check_number, rule.name)

    def _keep(self, key: tuple[Any, ...], columns: tuple[pl.Expr, pl.Expr]) -> tuple[pl.Expr, pl.Expr]:
        """Keep the case expressions ``columns`` under ``key`` (at most ``_CASES``); returns them."""
        if len(self.cases) >= _CASES:  # (another thread may take the same key out first)
            self.cases.pop(next(iter(self.cases), ()), None)
        self.cases[key] = columns
        return columns

    def _shared_rows(
        self, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], failing: list[tuple[str, int]],
        prefix: str,
    ) -> tuple[pl.DataFrame, str | None]:  # fmt: skip
        """``frame`` and, when rows fail more than one of the row-level expressions ``failing`` (mask,
        slot), the name of a column added to it holding the JSON of every row failing any of them
        (null elsewhere), rendered once per row: their cases are that column filtered by their masks.
        Otherwise (or if the rows cannot be rendered: each rule's own cases are tried) ``frame`` and None."""
        if len(failing) < 2:
            return frame, None
        union, name = f"{prefix}u", f"{prefix}j"
        marked = frame.with_columns(pl.any_horizontal(pl.col(m) for m, _ in failing).fill_null(False).alias(union))
        at = marked.get_column(union).arg_true()
        if len(at) == sum(int(frame.get_column(m).sum()) for m, _ in failing):
            return frame, None  # no row fails two of them: nothing to share
        key = (union, tuple((n, originals.get(n, n)) for n in df.columns))
        columns = self.cases.get(key)
        if columns is None:
            rule = self.slots[failing[0][1]].rule
            columns = self._keep(key, case_columns(self._case_value(rule, df, marked.schema, originals, union), union))
        value = columns[0]
        try:
            rendered = marked.select(value).to_series()
        except Exception:  # a value that cannot be rendered: each rule's own cases are tried
            return frame, None
        column = pl.Series(name, [None], dtype=pl.String).new_from_index(0, frame.height).scatter(at, rendered)
        return frame.with_columns(column), name

    def _case_value(
        self, rule: Rule, df: pl.DataFrame, schema: pl.Schema, originals: dict[str, str], mask: str
    ) -> pl.Expr:
        """The ``failure_case`` of the failing rows (``mask``) of ``rule``: the value (a row-level
        expression or a composite key: the values it reads, as JSON), redacted where classified;
        the columns are filtered first, so only those rows are rendered."""
        redacted, name = self.redacted, str(rule.column)

        def col(n: str) -> pl.Expr:
            return pl.col(n).filter(pl.col(mask))

        if rule.op is Op.EXPRESSION or rule.key_columns:
            shown = [(n, col(originals.get(n, n))) for n in rule.key_columns or df.columns]
            # pandera renders a frame check's rows from Python values: a Float32 as the double it is
            shown = [(n, e.cast(pl.Float64) if schema.get(originals.get(n, n)) == pl.Float32 else e) for n, e in shown]
            shown = [(n, redact(e) if n in redacted else e) for n, e in shown]
            if not shown:
                return pl.repeat(pl.lit("{}"), pl.col(mask).sum())
            return pl.struct(e.alias(n) for n, e in shown).struct.json_encode()
        source = originals.get(name, name) if rule.op is Op.DTYPE else name
        value = as_text(col(source), schema[source])
        return redact(value) if name in redacted else value


_CASES = 512  # case expressions kept per compiled schema object


def _columns_read(rule: Rule, schema_obj: SchemaObject) -> tuple[frozenset[str], frozenset[str]]:
    """The columns ``rule`` reads (a SQL query the allow-list refuses: every column), and those whose
    values can reach its value (a SQL rule's selected expression outside ``COUNT``; none for row rules,
    whose value is a count of rows)."""
    if rule.op is Op.SQL:
        every = frozenset(schema_obj.columns)
        read, shown = sql_reads(str(rule.args[0]), (schema_obj.name, "batch"))
        return (every if read is None else read), (every if shown is None else shown)
    if rule.op is Op.EXPRESSION:
        return frozenset(expression_columns(rule.args[0])), frozenset()
    if rule.key_columns:
        return frozenset(rule.key_columns), frozenset()
    return frozenset({rule.column} if rule.column is not None else ()), frozenset()
