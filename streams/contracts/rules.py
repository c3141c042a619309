"""ODCS quality rules (library metrics, sql, custom) compiled into the rule IR."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Collection
from typing import Any

import polars as pl

from streams.contracts import expressions
from streams.contracts.model import THRESHOLD_OPERATORS, Field, Op, Rule, Severity, Threshold, Unit, check_label
from streams.contracts.source import Path_, SourceContext
from streams.contracts.types import (
    NoInstant,
    bound_value,
    check_regex,
    odcs_pattern,
    sub_microsecond,
    temporal_value,
)
from streams.errors import ContractSchemaError

__all__ = ["quality_rule", "sql_reads"]


def sql_reads(query: str, tables: tuple[str, ...]) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """``(read, shown)`` of a SQL rule: every column it reads (its errors may quote their values)
    and the columns whose values can reach its result: those of the selected expression outside
    ``COUNT(...)`` (a count is a number of rows, a filter only selects rows). ``None`` when the
    query does not pass the allow-list (take it to read and show every column). The report
    redacts results and errors over classified columns with them. Alias names count as read (an alias
    may share a column's name: ``MAX(salary) AS salary``), and a selected alias may carry any column
    read (``SELECT MAX(s) FROM (SELECT salary AS s ...)``): then every column read is shown."""
    import sqlglot
    from sqlglot import exp

    from streams.contracts import sql

    try:
        checked = sql.check_sql(query, tables)
        tree = sqlglot.parse_one(checked.query, read=sql.DIALECT)
    except (sql.SqlRuleError, sqlglot.errors.SqlglotError, RecursionError, ValueError):
        return None, None
    read = frozenset(checked.columns)
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1:
        return read, read
    shown: set[str] = set()
    stack: list[exp.Expression] = [tree.expressions[0]]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Count):
            continue
        if isinstance(node, exp.Column):
            shown.add(node.name)
        stack.extend(node.iter_expressions())
    return read, read if shown & checked.aliases else frozenset(shown)


_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")


def _substitute(query: str, token: str, name: str) -> str:
    """``query`` with ``token`` (``${property}``, ``${object}``, ...) replaced by ``name`` as a SQL identifier:
    as written where it reads as that one column, else quoted (a nested path ``"customer.age"``, a name with a
    space or a keyword such as ``from``; unquoted, SQL read ``customer.age`` as column ``age`` of a relation
    ``customer``). A token the author quoted already (``"${property}"``) is quoted once."""
    import sqlglot
    from sqlglot import exp

    from streams.contracts import sql

    try:
        parsed = sqlglot.parse_one(name, read=sql.DIALECT)
        plain = isinstance(parsed, exp.Column) and parsed.name == name and not parsed.table
    except (sqlglot.errors.SqlglotError, ValueError):
        plain = False
    quoted = '"' + name.replace('"', '""') + '"'
    query = query.replace(f'"{token}"', quoted)
    return query.replace(token, name if plain else quoted)


def _threshold(q: dict[str, Any], where: Path_, ctx: SourceContext) -> Threshold:
    present = [op for op in THRESHOLD_OPERATORS if op in q]
    unit_text = str(q.get("unit") or "rows").lower()
    if unit_text not in ("rows", "percent"):
        raise ctx.error(f"not supported: unit {unit_text!r}; use rows or percent", (*where, "unit"))
    unit = Unit(unit_text)
    if not present:
        return Threshold(unit=unit)
    op = present[0]
    raw = q[op]
    if op in ("mustBeBetween", "mustNotBeBetween"):
        if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, (int, float)) for x in raw)):
            raise ctx.error(f"{op} needs two numbers, e.g. [1, 10]", (*where, op), ContractSchemaError)
        return Threshold(op, (_bound(raw[0], op, where, ctx), _bound(raw[1], op, where, ctx)), unit)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ctx.error(f"{op} needs a number, got {raw!r}", (*where, op), ContractSchemaError)
    return Threshold(op, _bound(raw, op, where, ctx), unit)


def _bound(raw: int | float, op: str, where: Path_, ctx: SourceContext) -> float:
    """A threshold as a float: not NaN (no count or rate compares with it), not beyond a float's range."""
    try:
        value = float(raw)
    except OverflowError:
        raise ctx.error(
            f"{op}: {str(raw)[:20]}... ({len(str(raw))} digits) is beyond the range of a threshold (about 1e308)",
            (*where, op),
            ContractSchemaError,
        ) from None
    if math.isnan(value):
        raise ctx.error(f"{op} is NaN (.nan); no measured count or rate compares with it", (*where, op),
                        ContractSchemaError)  # fmt: skip
    return value


def quality_rule(
    q: dict[str, Any],
    where: Path_,
    ctx: SourceContext,
    *,
    column: str | None,
    field: Field | None,
    obj_name: str | None,
    fields: dict[str, Field],
    table: str | None = None,
    columns: Collection[str] = (),
) -> Rule | None:
    """Compile one ODCS quality rule; ``table`` is the schema object's name (SQL rules read it)
    and ``fields`` every property of the object when known (SQL and expressions are checked
    against them)."""
    kind = q.get("type") or ("library" if "metric" in q or "rule" in q else None)
    if kind == "text":
        return None  # human-readable only
    severity_text = str(q.get("severity") or "error").lower()
    try:
        severity = Severity(severity_text)
    except ValueError:
        raise ctx.error(
            f"not supported: severity {severity_text!r}; use error, warning or info", (*where, "severity")
        ) from None
    threshold = _threshold(q, where, ctx)
    common: dict[str, Any] = {
        "severity": severity,
        "threshold": threshold,
        "dimension": q.get("dimension"),
        "description": q.get("description"),
        "line": ctx.line(where),
    }
    label = column or obj_name or "object"

    def rule(default_name: str, op: Op, args: tuple[Any, ...], col: str | None, source: str) -> Rule:
        name = str(q.get("name") or default_name)
        return Rule(name=name, op=op, args=args, check=check_label(op, args), column=col, source=source, **common)

    if kind == "library":
        metric = q.get("metric") or q.get("rule")
        op, args, col = _library(metric, q, where, ctx, column, field, fields)
        made = rule(f"{label}:{metric}", op, args, col, "quality")
        if op is Op.STR_CONTAINS:  # labelled with the pattern as written (what runs is its Rust equivalent)
            made = dataclasses.replace(made, check=check_label(op, (str(q["arguments"]["pattern"]),)))
        return made
    if kind == "sql":
        from streams.contracts import sql  # sqlglot is imported for contracts with SQL rules only

        query = str(q.get("query") or "")
        bound = table or obj_name or "batch"
        for token in ("${object}", "{object}", "${table}", "{table}"):
            query = _substitute(query, token, bound)
        if column is not None:
            for token in ("${property}", "{property}", "${column}", "{column}"):
                query = _substitute(query, token, column)
        try:  # the narrow integer columns, asked about the query's columns only (a set of all was quadratic)
            checked = sql.check_sql(query, (bound, "batch"), _NarrowIntegers(fields))
        except sql.SqlRuleError as exc:
            raise ctx.error(exc.message, (*where, "query")) from None
        # names looked up, not sets of every property built per rule (that made loading quadratic)
        unread = (
            sorted(c for c in checked.columns - checked.aliases if c not in fields and c not in columns)
            if table is not None
            else []
        )
        if unread:
            raise ctx.error(
                f"the SQL query reads unknown columns: {', '.join(unread)} (the schema object has "
                f"{', '.join(sorted(fields)) or 'no properties'})",
                (*where, "query"),
            )
        return rule(f"{label}:sql#{where[-1]}", Op.SQL, (checked.query,), None, "sql")
    if kind == "custom":
        engine = str(q.get("engine", "")).lower()
        impl = q.get("implementation")
        if not isinstance(impl, str):
            raise ctx.error("a custom rule's implementation must be a string", (*where, "implementation"))
        if engine == "pandera":
            if column is None:
                raise ctx.error("a pandera check must be declared on a property (it checks one column)", where)
            try:
                method, kwargs = expressions.parse_check_call(impl)
            except expressions.ExpressionError as exc:
                raise ctx.error(str(exc), (*where, "implementation")) from None
            op, args = _pandera_call(method, kwargs, where, ctx)
            if op in (Op.ISIN, Op.NOTIN):
                args = (_typed(args[0], field, where, ctx),)
            elif op in (Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE, Op.IN_RANGE) and not _is_number(field):
                bounds = 2 if op is Op.IN_RANGE else 1  # dates and timestamps as text, read as bounds are
                args = (*_typed(args[:bounds], field, where, ctx, members=False), *args[bounds:])
            return rule(f"{label}:{op.value}", op, args, column, "custom")
        if engine in ("expression", "polars"):
            try:
                node = expressions.parse_expression(impl)
            except expressions.ExpressionError as exc:
                raise ctx.error(str(exc), (*where, "implementation")) from None
            checked_names = obj_name is not None or table is not None
            read = expressions.columns(node)  # looked up by name: a set of every property per rule was quadratic
            unknown = {c for c in read if c not in fields and c not in columns} if checked_names else set()
            if unknown:
                raise ctx.error(
                    f"expression reads unknown properties: {', '.join(sorted(unknown))}", (*where, "implementation")
                )
            node = _typed_expression(node, fields, (*where, "implementation"), ctx)
            return rule(f"{label}:expression#{where[-1]}", Op.EXPRESSION, (node,), None, "custom")
        raise ctx.error(
            f"not supported: custom engine {engine!r}; use `pandera` (a built-in Check call) "
            "or `expression` (a row predicate)",
            (*where, "engine"),
        )
    raise ctx.error(f"not supported: quality type {kind!r}; use library, sql, custom or text", (*where, "type"))


def _library(
    metric: Any,
    q: dict[str, Any],
    where: Path_,
    ctx: SourceContext,
    column: str | None,
    field: Field | None,
    fields: dict[str, Field],
) -> tuple[Op, tuple[Any, ...], str | None]:
    args_in = q.get("arguments") or {}
    if metric == "rowCount":
        if str(q.get("unit") or "rows").lower() == "percent":
            raise ctx.error(
                "not supported: rowCount with unit percent (a row count is a number of rows, not a share; "
                "use unit: rows)",
                (*where, "unit"),
            )
        return Op.ROW_COUNT, (), None
    if metric not in _METRICS:
        raise ctx.error(f"not supported: metric {metric!r}; supported are {', '.join(_METRICS)}", (*where, "metric"))
    if column is None and metric == "duplicateValues":  # ODCS 3.1: uniqueness of a tuple of properties
        props = args_in.get("properties")
        if not (isinstance(props, list) and props and all(isinstance(p, str) for p in props)):
            raise ctx.error(
                "a schema-level duplicateValues needs arguments.properties, a list of property names "
                "(e.g. [tenant_id, order_id])",
                (*where, "arguments"),
            )
        unknown = [p for p in props if p not in fields]
        if unknown:
            raise ctx.error(
                f"duplicateValues names unknown properties: {', '.join(unknown)} (the schema object has "
                f"{', '.join(sorted(fields)) or 'no properties'})",
                (*where, "arguments", "properties"),
            )
        if len(set(props)) != len(props):
            raise ctx.error("duplicateValues lists a property twice", (*where, "arguments", "properties"))
        return Op.UNIQUE, (tuple(props),), None
    if column is None:
        raise ctx.error(f"metric {metric} must be declared on a property", (*where, "metric"))
    if metric == "duplicateValues" and "properties" in args_in:  # was ignored: the property alone was checked
        raise ctx.error(
            "arguments.properties (uniqueness of a tuple of properties) belongs to a duplicateValues in the schema "
            "object's quality; on a property, duplicateValues checks that property alone (remove the argument)",
            (*where, "arguments", "properties"),
        )
    if metric == "nullValues":
        return Op.NOT_NULL, (), column
    if metric == "duplicateValues":
        return Op.UNIQUE, (), column
    if metric == "missingValues":
        values = args_in.get("missingValues", [None, ""])
        if not isinstance(values, list):
            raise ctx.error("missingValues needs a list, e.g. [null, '', 'N/A']", (*where, "arguments"))
        return Op.MISSING, (tuple(values),), column
    # invalidValues
    if "validValues" in args_in:
        values = args_in["validValues"]
        if not isinstance(values, list) or not values:
            raise ctx.error("validValues needs a non-empty list", (*where, "arguments", "validValues"))
        return Op.ISIN, (_typed(tuple(values), field, where, ctx),), column
    if "pattern" in args_in:  # ECMA-262 (JSON Schema's), run as the equivalent Rust regex
        return Op.STR_CONTAINS, (odcs_pattern(str(args_in["pattern"]), (*where, "arguments", "pattern"), ctx),), column
    raise ctx.error(
        "not supported: invalidValues without arguments.validValues or arguments.pattern "
        "(nothing to check values against)",
        (*where, "arguments"),
    )


def _typed(
    values: tuple[Any, ...], field: Field | None, where: Path_, ctx: SourceContext, members: bool = True
) -> tuple[Any, ...]:
    """A value list (``validValues``, ``Check.isin`` / ``notin``) in the property's type where polars could not
    compare it as written: integers on a number property (``[0, 0.5, 1]``), integral numbers on an integer one
    (``[100.0]``), ISO text on a date, time or timestamp property (YAML hands dates over as text), read as bounds
    are. A value no value of the property can equal (``1.5`` on an integer, text on a number) is a ``file:line``
    error (:func:`expressions.member_values`); text that is no date stays, and lint names the engine's error."""
    dtype = field.dtype if field is not None else None
    if field is None or dtype is None:
        return values
    if not isinstance(dtype, (pl.Date, pl.Datetime, pl.Time)):
        if not members:  # bounds of comparisons on a non-number property: left as written
            return values
        try:
            return expressions.member_values(values, dtype, field.name)
        except expressions.ExpressionError as exc:
            raise ctx.error(str(exc), where, ContractSchemaError) from None
    out = []
    for v in values:
        read = v
        if isinstance(v, str):
            with contextlib.suppress(ContractSchemaError):
                read = bound_value(v, dtype, where, ctx)
        out.append(read)
    return tuple(out)


def _typed_expression(node: expressions.Node, fields: dict[str, Field], at: Path_, ctx: SourceContext) -> Any:
    """An expression's text literals compared with date, time or timestamp properties, read as bounds are
    (``d > '2024-01-01'``: polars cannot compare a date with text); text that is no such value is a
    ``file:line`` error naming it."""

    def read(text: str, dtype: pl.DataType) -> Any:
        if (finer := sub_microsecond(text, dtype)) is not None:
            raise ctx.error(f"the expression compares a property with {finer}", at, ContractSchemaError)
        with contextlib.suppress(ValueError):  # text that is no ISO value: the error below
            try:
                temporal_value(text, dtype)
            except NoInstant as exc:
                raise ctx.error(f"the expression compares a property with {exc}", at, ContractSchemaError) from None
        try:
            return bound_value(text, dtype, at, ctx)
        except ContractSchemaError:
            kind = "date" if isinstance(dtype, pl.Date) else "time" if isinstance(dtype, pl.Time) else "timestamp"
            example = {"date": "2024-01-01", "time": "08:30:00", "timestamp": "2024-01-01T08:30:00Z"}[kind]
            raise ctx.error(
                f"the expression compares a {kind} property with {text!r}, which is not an ISO-8601 {kind} "
                f"(e.g. '{example}')",
                at,
                ContractSchemaError,
            ) from None

    try:
        return expressions.type_literals(node, lambda name: fields[name].dtype if name in fields else None, read)
    except expressions.ExpressionError as exc:  # a value list no value of its column can equal
        raise ctx.error(str(exc), at, ContractSchemaError) from None


class _NarrowIntegers:
    """The integer properties of ``fields`` narrower than 64 bits, as a container (``name in it``)."""

    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = fields

    def __contains__(self, name: object) -> bool:
        field = self.fields.get(name) if isinstance(name, str) else None
        return field is not None and isinstance(field.dtype, expressions.NARROW_INTEGERS)


def _is_number(field: Field | None) -> bool:
    return field is None or field.dtype.is_numeric()


_PANDERA_OPS: dict[str, Op] = {
    "equal_to": Op.EQ,
    "eq": Op.EQ,
    "not_equal_to": Op.NE,
    "ne": Op.NE,
    "greater_than": Op.GT,
    "gt": Op.GT,
    "greater_than_or_equal_to": Op.GE,
    "ge": Op.GE,
    "less_than": Op.LT,
    "lt": Op.LT,
    "less_than_or_equal_to": Op.LE,
    "le": Op.LE,
    "in_range": Op.IN_RANGE,
    "between": Op.IN_RANGE,
    "isin": Op.ISIN,
    "notin": Op.NOTIN,
    "str_matches": Op.STR_MATCHES,
    "str_contains": Op.STR_CONTAINS,
    "str_startswith": Op.STR_STARTSWITH,
    "str_endswith": Op.STR_ENDSWITH,
    "str_length": Op.STR_LENGTH,
}


def _pandera_call(method: str, kw: dict[str, Any], where: Path_, ctx: SourceContext) -> tuple[Op, tuple[Any, ...]]:
    op = _PANDERA_OPS[method]
    if op in (Op.STR_MATCHES, Op.STR_CONTAINS) and isinstance(kw.get("pattern"), str):
        check_regex(kw["pattern"], (*where, "implementation"), ctx)
    try:
        if op is Op.IN_RANGE:
            args = (kw["min_value"], kw["max_value"], kw.get("include_min", True), kw.get("include_max", True))
            _nonempty(method, *args, where=where, ctx=ctx)
            return op, args
        if op in (Op.ISIN, Op.NOTIN):
            values = next(iter(kw.values()))
            return op, (tuple(values),)
        if op is Op.STR_LENGTH:
            if kw.get("min_value") is None and kw.get("max_value") is None:
                raise KeyError("min_value")
            low, high = kw.get("min_value"), kw.get("max_value")
            if low is not None and high is not None:
                _nonempty(method, low, high, True, True, where=where, ctx=ctx)
            return op, (low, high)
        (value,) = kw.values()
        return op, (value,)
    except (KeyError, ValueError, TypeError, StopIteration):
        raise ctx.error(f"Check.{method} is missing required arguments", (*where, "implementation")) from None


def _nonempty(method: str, low: Any, high: Any, include_min: Any, include_max: Any, *, where: Path_,
              ctx: SourceContext) -> None:  # fmt: skip
    """Refuse bounds no value can lie within, as pandera does (it will not build such a check)."""
    if low is None or high is None:
        raise KeyError("min_value" if low is None else "max_value")
    try:
        empty = high < low or (low == high and not (include_min and include_max))
    except TypeError:
        raise ctx.error(
            f"Check.{method} needs comparable bounds, got {low!r} and {high!r}", (*where, "implementation")
        ) from None
    if empty:
        raise ctx.error(
            f"Check.{method}({low!r}, {high!r}) defines an empty interval: no value can pass (pandera refuses it "
            "too; did you swap the bounds?)",
            (*where, "implementation"),
            ContractSchemaError,
        )
