"""Evaluation guards, batch metrics and the materialization of results and failure cases.

Everything here turns counts and failure masks computed by the fused plan
(:mod:`streams.validation.engine`) into :class:`CheckResult` objects and pandera-shaped
failure cases (rendered by :mod:`streams.validation.render`); nothing raises on data (a rule
that cannot run is reported).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from streams.contracts.expressions import columns as expression_columns
from streams.contracts.model import Op, Rule, SchemaObject, Unit
from streams.contracts.rules import sql_reads
from streams.validation.predicates import FRAME_CONTEXT, RuleSlot, rule_layout, unique_key
from streams.validation.render import CaseRendering
from streams.validation.report import REDACTED, CheckResult, bool_array


def error_text(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")


def redact_error(error: str, columns: frozenset[str] | set[str]) -> str:
    """``error`` without its message, which may quote values of the classified ``columns``
    (a failing CAST prints the value): the exception type and why it is hidden."""
    kind = error.split(":", 1)[0] if ":" in error else "error"
    return f"{kind}: {REDACTED} (the message may carry values of classified column(s) {', '.join(sorted(columns))})"


def duplicates(frame: pl.DataFrame, mask: np.ndarray, rule: Rule) -> int:
    """ODCS ``duplicateValues`` of a failing uniqueness rule: rows of the duplicated groups
    (``mask``, a numpy Boolean array) minus their distinct keys, i.e. rows - distinct over the non-null keys."""
    key, _ = unique_key(rule, pl.col(str(rule.column)))
    distinct = frame.filter(pl.Series(mask)).select(key.n_unique()).item()
    return int(mask.sum()) - int(distinct)


def repeated_hashes(hashes: pl.Series) -> pl.Series | None:
    """The rows whose (non-null) hash occurs more than once, or None when no hash repeats (a
    sort of the hashes costs about a fifth of ``is_duplicated``): :func:`repeated_rows` as a mask."""
    rows = repeated_rows(hashes)
    if rows is None:
        return None
    mask = np.zeros(len(hashes), dtype=np.bool_)
    mask[rows] = True
    return pl.Series(hashes.name, mask)


def repeated_rows(hashes: pl.Series, values: np.ndarray | None = None) -> np.ndarray | None:
    """The rows (ascending) whose (non-null) hash occurs more than once, or None when no hash repeats. ``values``:
    ``hashes`` as numpy (nulls: any value), when known."""
    nulls = hashes.null_count()
    present = hashes.drop_nulls().to_numpy() if nulls else hashes.to_numpy() if values is None else values
    ordered = np.sort(present)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return None
    repeated = np.unique(ordered[1:][same])
    if nulls:
        valid = bool_array(hashes.is_not_null())
        return np.flatnonzero(_members(hashes.fill_null(0).to_numpy(), repeated) & valid)
    return np.flatnonzero(_members(present, repeated))


def _members(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Where ``values`` is one of ``among`` (sorted, distinct): a comparison per value for a few of them (a group
    of rows repeating one key), else a binary search (``np.isin`` sorts both arrays: ~0.6 ms at 100k rows)."""
    if len(among) <= _FEW:
        hit = values == among[0]
        for value in among[1:]:
            hit |= values == value
        return hit
    at = np.minimum(np.searchsorted(among, values), len(among) - 1)
    return among[at] == values


_FEW = 4
_PY_KEYS = 256  # candidate keys up to which _grouped compares them as Python strings


def verify_duplicates(
    frame: pl.DataFrame, candidates: pl.Series, rule: Rule, hashes: pl.Series | None = None
) -> tuple[pl.Series, int]:
    """:func:`verify_rows` of the candidate mask ``candidates``, the failure mask as a Series."""
    rows = np.flatnonzero(bool_array(candidates))
    mask, found = verify_rows(frame, rows, rule, hashes)
    return pl.Series(candidates.name, mask), found


def verify_rows(
    frame: pl.DataFrame, rows: np.ndarray, rule: Rule, hashes: pl.Series | None = None, values: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """The exact failure mask (numpy) of a uniqueness rule from its candidate rows (ascending: rows whose key
    hash is duplicated, see :func:`~streams.validation.predicates.duplicate_candidates`), and its ODCS
    ``duplicateValues`` (rows of the duplicated groups minus their distinct keys): the candidates'
    keys compared as they are, over those rows only. With the keys' ``hashes`` (a text key): the
    candidates sorted by hash, each key compared with its neighbour of the same hash; when every group
    of a hash holds one key (no collision: always, but for 64-bit collisions) the candidates are the
    duplicated rows, with no query; otherwise the keys are compared in polars. ``values``: ``hashes`` as numpy (no
    nulls), when known: the candidates' hashes are read from it, not gathered."""
    at = pl.Series(rows, dtype=pl.UInt32)
    names = rule.key_columns or (str(rule.column),)
    mask = np.zeros(frame.height, dtype=np.bool_)
    if len(names) == 1:  # no select for one column (Series[Series]: a gather without a plan)
        keys = frame.get_column(names[0])[at]
        if hashes is not None and keys.dtype == pl.String and len(rows) > 1:
            found = _grouped(hashes[at].to_numpy() if values is None else values[rows], keys)
            if found is not None:
                mask[rows] = True
                return mask, found
    else:
        keys = frame.select(unique_key(rule, pl.col(names[0]))[0].gather(at)).to_series()
    key = pl.col("k")
    # one call: the repeated keys, and how many distinct ones (a scalar, broadcast)
    out = keys.to_frame("k").select(
        key.is_duplicated().alias("r"), key.filter(key.is_duplicated()).n_unique().alias("n")
    )
    repeated = out.to_series(0).to_numpy()
    if not repeated.any():
        return mask, 0
    mask[rows[repeated]] = True
    return mask, int(repeated.sum()) - int(out.to_series(1)[0])


def _grouped(hashes: np.ndarray, keys: pl.Series) -> int | None:
    """Rows minus distinct keys of ``keys`` (no nulls) whose ``hashes`` each occur more than once, when the keys
    of each hash are all equal (else None: a collision). A few keys are compared as Python strings, each with the
    first key of its hash (a dict: no sort, no polars call per step); more are sorted by hash and compared with their
    neighbours in one polars comparison."""
    if len(keys) <= _PY_KEYS:  # each key against the first of its hash: a dict, no sort
        first: dict[int, str] = {}
        for value, key in zip(hashes.tolist(), keys.to_list(), strict=True):
            if first.setdefault(value, key) != key:
                return None
        return (len(keys) - len(first)) or None  # (None: no hash repeats)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return None
    # (more keys in one polars comparison: Python strings cost ~0.1 µs each, 0.6 ms for 6000 keys)
    ordered_keys = keys[pl.Series(order, dtype=pl.UInt32)]
    equal = (ordered_keys.slice(1) == ordered_keys.slice(0, len(keys) - 1)).to_numpy()
    if not equal[same].all():
        return None
    return int(same.sum())  # rows - groups: each row but the first of its group


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
class Reporter(CaseRendering):
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
