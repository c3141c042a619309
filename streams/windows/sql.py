"""``type: sql`` rules judged on a window: decomposed into mergeable aggregates where the query allows.

A query is **mergeable** when it is one ``SELECT`` of one scalar expression over the
schema object's table, optionally with a ``WHERE`` filter, whose aggregates are only
``COUNT(*)``, ``COUNT(x)``, ``SUM(x)``, ``MIN(x)``, ``MAX(x)`` and ``AVG(x)`` (``x`` any
row-wise expression, e.g. ``SUM(CASE WHEN delay > 60 THEN 1 ELSE 0 END)``), and which
reads no column outside an aggregate. Such a query is split into

* a **partial query** run on each batch's records of the window:
  ``SELECT COUNT(*) AS a0, SUM(x) AS a1, ... FROM t WHERE <filter>`` (``AVG`` becomes a
  ``SUM`` and a ``COUNT``), whose values merge exactly (counts and sums add, minima and
  maxima take the min and max, an empty ``SUM``/``MIN``/``MAX`` is NULL and neutral);
* a **final query**: the original scalar expression with each aggregate replaced by its
  merged value, run on a one-row frame.

The result equals the query run on the window's records as one frame (integers
exactly; floating-point sums to rounding, as their order of addition differs).
Anything else (``GROUP BY``, ``DISTINCT``, ``COUNT(DISTINCT x)``, joins, subqueries,
CTEs, window functions, ``HAVING``, ``ORDER BY``/``LIMIT``, other aggregates such as
``MEDIAN``) is **not mergeable**: it is judged on each batch's records of the window,
and the window's check counts the batch slices that broke the threshold
(``evaluation: batches`` in the window summary).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import sqlglot
from sqlglot import exp

from streams.contracts.sql import DIALECT

__all__ = ["AggregatePlan", "merge_values", "plan_sql", "query_columns"]

_KINDS = {exp.Count: "count", exp.Sum: "sum", exp.Min: "min", exp.Max: "max"}
_UNSUPPORTED_CLAUSES = ("joins", "group", "having", "distinct", "order", "limit", "offset", "qualify", "laterals")
Value = int | float | None
#: the column naming each row's slice in :attr:`AggregatePlan.grouped_query`
GROUP_COLUMN = "__qstreams_slice"


@dataclass(frozen=True, slots=True)
class AggregatePlan:
    """A mergeable SQL rule: the partial query, the kind of each partial value and the final query."""

    partial_query: str  # SELECT <aggregates> AS a0.. FROM <table> [WHERE ...]
    kinds: tuple[str, ...]  # count | sum | min | max, one per partial value
    final_query: str  # SELECT <expression over a0..> FROM partials
    grouped_query: str = ""  # the partial query per value of GROUP_COLUMN (one run for every slice of a batch)

    def partial(self, frame: pl.DataFrame, object_name: str) -> tuple[Value, ...]:
        """The partial values over ``frame`` (raises a polars error if the query cannot run)."""
        ctx = pl.SQLContext(frames={object_name: frame.lazy(), "batch": frame.lazy()})
        row = ctx.execute(self.partial_query).collect(engine="in-memory").row(0)
        return tuple(_number(v) for v in row)

    def partials(self, frame: pl.DataFrame, object_name: str, groups: np.ndarray) -> dict[int, tuple[Value, ...]]:
        """The partial values of each slice of ``frame`` (``groups``: the slice of each row, -1 for none) in one
        run of the query; a slice whose rows the ``WHERE`` filters out gets the empty values (count 0, else NULL),
        exactly what :meth:`partial` gives on the slice alone."""
        if not self.grouped_query:
            raise ValueError("this plan has no grouped query")
        tagged = frame.with_columns(pl.Series(GROUP_COLUMN, groups, dtype=pl.Int64))
        tagged = tagged.filter(pl.col(GROUP_COLUMN) >= 0)
        ctx = pl.SQLContext(frames={object_name: tagged.lazy(), "batch": tagged.lazy()})
        result = ctx.execute(self.grouped_query).collect(engine="in-memory")
        empty: tuple[Value, ...] = tuple(0 if kind == "count" else None for kind in self.kinds)
        out: dict[int, tuple[Value, ...]] = {int(g): empty for g in np.unique(groups[groups >= 0])}
        for row in result.iter_rows():
            out[int(row[0])] = tuple(_number(v) for v in row[1:])
        return out

    def final(self, values: tuple[Value, ...]) -> float | int:
        """The query's scalar over the merged values (raises if it is not a number)."""
        columns = {
            f"a{i}": pl.Series([v], dtype=_dtype(kind, v))
            for i, (kind, v) in enumerate(zip(self.kinds, values, strict=True))
        }
        frame = pl.DataFrame(columns) if columns else pl.DataFrame({"_": [0]})
        result = pl.SQLContext(frames={"partials": frame.lazy()}).execute(self.final_query).collect()
        value = _number(result.item(0, 0) if result.height and result.width else None)
        if value is None:
            raise ValueError("the SQL query returned None, not a number")  # as the engine says it
        return value


def _dtype(kind: str, value: Value) -> pl.DataType:
    """The column of a merged value in the final query: a sum of integers may be beyond Int64 (an exact
    ``SUM`` is an Int128: see ``streams.contracts.sql``)."""
    if kind == "count" or isinstance(value, int):
        return pl.Int64() if value is None or -(2**63) <= value < 2**63 else pl.Int128()
    return pl.Float64()


def _number(value: Any) -> Value:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        return float(value)
    raise ValueError(f"the SQL query returned {value!r}, not a number")


def _nan(v: Value) -> bool:
    return isinstance(v, float) and math.isnan(v)


def merge_values(kinds: tuple[str, ...], a: tuple[Value, ...], b: tuple[Value, ...]) -> tuple[Value, ...]:
    """Merge two partial value tuples (associative and commutative; NULL is neutral except in counts)."""
    out: list[Value] = []
    for kind, x, y in zip(kinds, a, b, strict=True):
        if x is None or y is None:
            out.append((x if y is None else y) if kind != "count" else (x or 0) + (y or 0))
        elif kind in ("count", "sum"):
            out.append(x + y)
        elif _nan(x) or _nan(y):  # polars' MIN / MAX skip NaN unless every value is NaN (Python's min / max
            out.append(y if _nan(x) else x)  # kept whichever came first: order-dependent)
        else:
            out.append(min(x, y) if kind == "min" else max(x, y))
    return tuple(out)


def plan_sql(query: str) -> AggregatePlan | str:
    """The mergeable plan of a SQL rule's query, or the reason it is not mergeable."""
    try:
        tree = sqlglot.parse_one(query, read=DIALECT)
    except Exception as exc:  # sqlglot raises ParseError and others
        return f"the query cannot be parsed for decomposition ({type(exc).__name__})"
    if not isinstance(tree, exp.Select):
        return "only a single SELECT can be merged across batches"
    for clause in _UNSUPPORTED_CLAUSES:
        if tree.args.get(clause):
            return f"a query with {clause.upper()} cannot be merged across batches"
    if tree.args.get("with"):
        return "a query with WITH cannot be merged across batches"
    if len(tree.expressions) != 1:
        return "the query must select exactly one value to be merged"
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        return "the query must read one table to be merged"
    where = tree.args.get("where")
    if where is not None and (where.find(exp.AggFunc) or where.find(exp.Select) or where.find(exp.Window)):
        return "a WHERE with aggregates or subqueries cannot be merged"
    scalar = tree.expressions[0]
    if scalar.find(exp.Select) or scalar.find(exp.Window):
        return "subqueries and window functions cannot be merged across batches"
    aggregates: list[tuple[str, exp.Expression]] = []  # (kind, argument or Star)
    replacements: dict[int, Any] = {}  # aggregate node id -> its replacement expression
    for node in list(scalar.find_all(exp.AggFunc)):
        kind = next((k for cls, k in _KINDS.items() if type(node) is cls), None)
        is_avg = type(node) is exp.Avg
        if kind is None and not is_avg:
            return f"aggregate {node.sql_name()} cannot be merged across batches"
        arg = node.this
        if isinstance(arg, exp.Distinct) or node.args.get("distinct") or (arg is not None and arg.find(exp.AggFunc)):
            return "COUNT(DISTINCT ...) and nested aggregates cannot be merged across batches"
        if is_avg:
            s, c = len(aggregates), len(aggregates) + 1
            exact = exp.Mul(
                this=exp.Paren(this=arg.copy()), expression=sqlglot.parse_one("CAST(1 AS INT128)", read=DIALECT)
            )
            aggregates += [("sum", exact), ("count", arg)]  # summed exactly, as SUM is (streams.contracts.sql)
            replacements[id(node)] = sqlglot.parse_one(
                f"CASE WHEN a{c} = 0 THEN NULL ELSE CAST(a{s} AS DOUBLE) / a{c} END", read=DIALECT
            )
        else:
            assert kind is not None
            replacements[id(node)] = exp.column(f"a{len(aggregates)}")
            aggregates.append((kind, arg if arg is not None else exp.Star()))
    if not aggregates:
        return "the query has no aggregate, so its value is not a function of the whole window"
    outer = scalar.copy()
    outer_nodes = list(outer.find_all(exp.AggFunc))
    if len(outer_nodes) != len(replacements):
        return "the query's aggregates could not be decomposed"
    originals = list(scalar.find_all(exp.AggFunc))
    for original, copied in zip(originals, outer_nodes, strict=True):
        if copied is outer:  # the scalar is the aggregate itself
            outer = replacements[id(original)].copy()
        else:
            copied.replace(replacements[id(original)].copy())
    if outer.find(exp.Column) and any(
        c.name not in {f"a{i}" for i in range(len(aggregates))} for c in outer.find_all(exp.Column)
    ):
        return "the query reads columns outside its aggregates"
    parts = []
    for i, (kind, arg) in enumerate(aggregates):
        call = "COUNT" if kind == "count" else kind.upper()
        parts.append(f"{call}({arg.sql(dialect=DIALECT)}) AS a{i}")
    table = source.this.sql(dialect=DIALECT)
    filter_sql = f" WHERE {where.this.sql(dialect=DIALECT)}" if where is not None else ""
    partial = f"SELECT {', '.join(parts)} FROM {table}{filter_sql}"
    grouped = f"SELECT {GROUP_COLUMN}, {', '.join(parts)} FROM {table}{filter_sql} GROUP BY {GROUP_COLUMN}"
    final = f"SELECT {outer.sql(dialect=DIALECT)} AS value FROM partials"
    return AggregatePlan(partial, tuple(k for k, _ in aggregates), final, grouped)


@functools.lru_cache(maxsize=256)
def query_columns(query: str) -> frozenset[str] | None:
    """The column names a query reads (None when it cannot be parsed, or reads ``*``); cached per query."""
    try:
        tree = sqlglot.parse_one(query, read=DIALECT)
    except Exception:  # unparseable: the caller keeps every column
        return None
    if not all(isinstance(star.parent, exp.Count) for star in tree.find_all(exp.Star)):
        return None  # SELECT * or t.*: every column
    return frozenset(c.name for c in tree.find_all(exp.Column))
