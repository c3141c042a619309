"""The pandera checks a rule becomes, and the markers that let them be read back.

Column rules become built-in ``pa.Check``s when pandera has one (recognized later by
``name`` and ``statistics``), else a custom check sharing the engine's predicate
(:func:`streams.validation.predicates.predicate`); frame rules become DataFrameSchema
checks. Every custom check carries its rule in ``statistics[MARKER]``.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from streams.contracts import expressions
from streams.contracts.model import Op, Rule, Severity, Unit
from streams.errors import ThresholdBreach
from streams.validation.failures import sql_metric
from streams.validation.predicates import failure_expr, predicate, unique_key

__all__ = ["BUILTINS", "MARKER", "ThresholdBreach", "column_check", "frame_check", "jsonable"]

#: pandera built-in check name -> (Op, the statistics giving Rule.args in order).
BUILTINS: dict[str, tuple[Op, tuple[str, ...]]] = {
    "equal_to": (Op.EQ, ("value",)),
    "not_equal_to": (Op.NE, ("value",)),
    "greater_than": (Op.GT, ("min_value",)),
    "greater_than_or_equal_to": (Op.GE, ("min_value",)),
    "less_than": (Op.LT, ("max_value",)),
    "less_than_or_equal_to": (Op.LE, ("max_value",)),
    "in_range": (Op.IN_RANGE, ("min_value", "max_value", "include_min", "include_max")),
    "isin": (Op.ISIN, ("allowed_values",)),
    "notin": (Op.NOTIN, ("forbidden_values",)),
    "str_matches": (Op.STR_MATCHES, ("pattern",)),
    "str_contains": (Op.STR_CONTAINS, ("pattern",)),
    "str_startswith": (Op.STR_STARTSWITH, ("string",)),
    "str_endswith": (Op.STR_ENDSWITH, ("string",)),
    "str_length": (Op.STR_LENGTH, ("min_value", "max_value")),
}
_BY_OP: dict[Op, str] = {op: name for name, (op, _) in BUILTINS.items()}
#: statistics key marking the custom checks written by :func:`to_pandera`.
MARKER = "streams_rule"


def column_check(rule: Rule) -> pa.Check:
    warn = rule.severity is not Severity.ERROR
    if rule.op in (Op.STR_MATCHES, Op.STR_CONTAINS) and not _python_compiles(str(rule.args[0])):
        return _rust_pattern_check(rule, warn)
    if rule.op in _BY_OP:
        args: list[Any] = [list(a) if isinstance(a, (tuple, set, frozenset)) else a for a in rule.args]
        check: pa.Check = getattr(pa.Check, _BY_OP[rule.op])(*args, raise_warning=warn)
        if check.error != rule.check:
            check = getattr(pa.Check, _BY_OP[rule.op])(*args, raise_warning=warn, error=rule.check)
        return check

    def fn(data: PolarsData) -> pl.LazyFrame:
        dtype = data.lazyframe.collect_schema()[data.key]
        return data.lazyframe.select(predicate(rule, pl.col(data.key), dtype)[0])

    # the predicate's own ignore_na, without building it untyped (a missingValues list mixing -1 and 'N/A'
    # cannot be one polars list; typed by the column, as in fn, it can)
    ignore_na = rule.op not in (Op.NOT_NULL, Op.UNIQUE, Op.MISSING)
    return pa.Check(
        fn,
        ignore_na=ignore_na,
        name=rule.op.value,
        error=rule.check,
        raise_warning=warn,
        statistics=_statistics(rule),
    )


def _python_compiles(pattern: str) -> bool:
    """Python's ``re`` compiles ``pattern`` without a warning (``[a&&b]`` warns: a set operation to come)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(pattern)
        except (re.error, TypeError, ValueError, OverflowError, RecursionError, Warning):
            return False
    return True


def _rust_pattern_check(rule: Rule, warn: bool) -> pa.Check:
    """pandera's built-in ``str_matches`` / ``str_contains`` for a pattern Python's ``re`` cannot compile.

    ``Check.str_contains`` vets its pattern with Python's ``re.compile`` before running it with polars (Rust
    ``regex``), so Rust syntax (``\\p{L}``, ``\\x{FEFF}``, ``[a&&b]``, ``(?-u:\\b)``) made ``to_pandera()``
    raise ``re.error`` on a contract the engine runs. The same built-in check, built as
    ``Check.str_contains`` builds it, without the Python vetting."""
    name = _BY_OP[rule.op]
    pattern = str(rule.args[0])
    return pa.Check.from_builtin_check_name(
        name,
        {"raise_warning": warn},
        error=rule.check,
        defaults={"determined_by_unique": True},
        statistics={"pattern": pattern},
        pattern=pattern,
    )


def frame_check(rule: Rule, object_name: str) -> pa.Check:
    warn = rule.severity is not Severity.ERROR
    stats = _statistics(rule)
    if rule.key_columns and rule.threshold.zero_tolerance:  # a composite key: row-wise, like the engine
        return pa.Check(
            lambda data: data.lazyframe.select(predicate(rule, pl.lit(None))[0]),
            ignore_na=False,
            name=rule.op.value,
            error=rule.check,
            raise_warning=warn,
            statistics=stats,
        )
    if rule.op is Op.EXPRESSION and rule.threshold.zero_tolerance:
        node = rule.args[0]
        return pa.Check(
            lambda data: data.lazyframe.select(expressions.to_polars(node)),
            ignore_na=True,
            name="expression",
            error=rule.check,
            raise_warning=warn,
            statistics=stats,
        )

    def fn(data: PolarsData) -> bool:
        metric = _metric(rule, data.lazyframe, object_name)
        if rule.threshold.allows(metric):
            return True
        # pandera 0.35 cannot concatenate a scalar ``False`` failure case with string
        # ones under lazy=True (polars SchemaError), so a breach is raised instead: it
        # is reported as a failure case carrying this message.
        raise ThresholdBreach(f"{metric:g} breaks {rule.threshold.describe()}")

    return pa.Check(fn, name=rule.op.value, error=rule.check, raise_warning=warn, statistics=stats)


def _metric(rule: Rule, lf: pl.LazyFrame, object_name: str) -> float:
    """The value a thresholded rule or batch metric compares with its threshold."""
    if rule.op is Op.ROW_COUNT:
        return float(lf.select(pl.len()).collect().item())
    if rule.op is Op.SQL:
        return sql_metric(str(rule.args[0]), lf, object_name)
    if rule.op is Op.EXPRESSION:
        fails = failure_expr(rule, pl.lit(None))
    else:
        column = str(rule.column)
        fails = failure_expr(rule, pl.col(column), lf.collect_schema()[column])
    if rule.op is Op.UNIQUE:  # ODCS duplicateValues: rows - distinct over the duplicated (non-null) keys
        key, _ = unique_key(rule, pl.col(str(rule.column)))
        dup = lf.filter(fails).select(pl.len() - key.n_unique()).collect().item()
        count, rows = dup, lf.select(pl.len()).collect().item()
    else:
        count, rows = lf.select(fails.sum(), pl.len()).collect().row(0)
    if rule.threshold.unit is Unit.PERCENT:
        return 100.0 * count / rows if rows else 0.0
    return float(count)


def jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _statistics(rule: Rule) -> dict[str, Any]:
    t = rule.threshold
    args: Any = expressions.to_text(rule.args[0]) if rule.op is Op.EXPRESSION else list(rule.args)
    return {
        MARKER: {
            "name": rule.name,
            "op": rule.op.value,
            "column": rule.column,
            "args": args,
            "threshold": {"operator": t.operator, "value": t.value, "unit": t.unit.value},
        }
    }
