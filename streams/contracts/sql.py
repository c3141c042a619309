"""``type: sql`` quality rules: parsed with sqlglot and checked against an allow-list.

A contract is untrusted input, and polars SQL can read files and URLs (``read_csv``,
``read_parquet``, ...). So the query text is never handed to polars as written: it is
parsed into an AST, every node is checked against the allow-list below, and the SQL
that runs is *regenerated from the checked AST* (what was checked is what runs).

Allowed: exactly one ``SELECT`` returning one column, over the bound schema object only
(named as the contract names it, or ``batch``), with ``WHERE``/``GROUP BY``/``HAVING``/
``ORDER BY``/``LIMIT``, subqueries over that same object, arithmetic, comparisons,
``CASE``, ``CAST``, the aggregates and scalar functions of :data:`AGGREGATES` and
:data:`SCALARS`. Refused: several statements, DML/DDL, table functions, other relations,
joins (also self joins: a 3-way cross join of 500 rows is 125M rows), window functions,
functions outside the list; the text, node count and nesting are bounded.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from streams.contracts.patterns import re2_to_rust
from streams.contracts.types import regex_problem
from streams.errors import SqlRuleError

__all__ = ["AGGREGATES", "ALLOWED_FUNCTIONS", "SCALARS", "SqlRule", "SqlRuleError", "check_sql"]

MAX_SQL_CHARS = 4_000
MAX_SQL_NODES = 1_000
MAX_SQL_DEPTH = 60


class PolarsSQL(DuckDB):
    """The dialect we read and write: DuckDB's (the closest to polars SQL: TRY_CAST, MEDIAN, ...),
    with regex matches written as polars' ``~`` operator."""

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {  # noqa: RUF012 - sqlglot's extension point
            **DuckDB.Generator.TRANSFORMS,
            exp.RegexpLike: lambda self, e: self.binary(e, "~"),
        }


DIALECT = PolarsSQL

AGGREGATES: tuple[type[exp.Expression], ...] = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.Stddev,
    exp.StddevSamp,
    exp.Variance,
    exp.Median,
)
SCALARS: tuple[type[exp.Expression], ...] = (
    exp.Abs,
    exp.Coalesce,
    exp.Nullif,
    exp.Length,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Sqrt,
    exp.Ln,
    exp.Log,
    exp.Pow,
    exp.Greatest,
    exp.Least,
    exp.Substring,
    exp.Concat,
    exp.DPipe,
    exp.RegexpLike,
    exp.Cast,
    exp.TryCast,
    exp.If,
    exp.Case,
)
ALLOWED_FUNCTIONS = (
    "the aggregates COUNT, SUM, AVG, MIN, MAX, STDDEV, STDDEV_SAMP, VARIANCE, VAR_SAMP, MEDIAN "
    "and the scalars ABS, COALESCE, NULLIF, LENGTH, LOWER, UPPER, TRIM, ROUND, FLOOR, CEIL, SQRT, LN, LOG, "
    "POWER, GREATEST, LEAST, SUBSTRING, CONCAT, ||, ~ (regex match), CAST, TRY_CAST, CASE"
)
#: Syntax (not functions) a query may use.
_SYNTAX: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.From,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Distinct,
    exp.Filter,
    exp.Subquery,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Identifier,
    exp.Column,
    exp.Star,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.And,
    exp.Or,
    exp.Not,
    exp.DataType,
    exp.DataTypeParam,
    exp.Tuple,
)
_ALLOWED = (*_SYNTAX, *AGGREGATES, *SCALARS)


@dataclass(frozen=True, slots=True)
class SqlRule:
    """A checked query: the SQL to run (regenerated from the AST) and the columns it reads."""

    query: str
    columns: frozenset[str]
    aliases: frozenset[str]


def _fail(message: str) -> SqlRuleError:
    return SqlRuleError(message)


def check_sql(query: str, tables: tuple[str, ...], widen: Container[str] = frozenset()) -> SqlRule:
    """Parse and allow-list ``query``; ``tables`` are the relation names it may read.

    ``widen`` holds the integer columns narrower than 64 bits (asked only about the columns the query reads): the
    query that runs reads them as ``BIGINT`` (polars computes ``i8 + 100`` in Int8 and wraps to ``-56``; SQL
    engines such as DuckDB widen).
    Raises :class:`SqlRuleError` (without a location: the caller adds ``file:line``).
    """
    if len(query) > MAX_SQL_CHARS:
        raise _fail(f"the SQL query is {len(query):,} characters long; SQL rules are limited to {MAX_SQL_CHARS:,}")
    try:
        statements = [s for s in sqlglot.parse(query, read=DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc).splitlines()[0]
        raise _fail(f"the SQL query cannot be parsed: {first}") from None
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError) as exc:
        raise _fail(
            f"the SQL query cannot be parsed: {str(exc).splitlines()[0] if str(exc) else 'too complex'}"
        ) from None
    if len(statements) != 1:
        raise _fail(f"a SQL rule must be exactly one SELECT statement, found {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Select):
        raise _fail(f"a SQL rule must be a SELECT query, not {tree.key.upper()}; nothing else may run from a contract")
    if len(tree.expressions) != 1 or isinstance(tree.expressions[0], exp.Star):
        raise _fail("a SQL rule must select exactly one value (e.g. SELECT COUNT(*) FROM orders WHERE ...)")
    columns: set[str] = set()
    aliases: set[str] = set()
    stack: list[tuple[exp.Expression, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_SQL_NODES or depth > MAX_SQL_DEPTH:
            raise _fail(
                f"the SQL query is too large or too deeply nested; SQL rules are limited to {MAX_SQL_NODES} nodes "
                f"and depth {MAX_SQL_DEPTH}"
            )
        _check_node(node, tables)
        if isinstance(node, exp.Column):
            columns.add(node.name)
        elif isinstance(node, (exp.Alias, exp.TableAlias)):
            aliases.add(node.alias if isinstance(node, exp.Alias) else node.name)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    _check_qualifiers(tree, tables)
    _as_duckdb(tree)
    wide = frozenset(c for c in columns if c in widen)
    if wide:
        tree = tree.transform(lambda n: _widened(n, wide))
    return SqlRule(tree.sql(dialect=DIALECT), frozenset(columns), frozenset(aliases))


def _as_duckdb(tree: exp.Expression) -> None:
    """Rewrite, in place, the functions polars SQL reads otherwise than DuckDB (whose dialect the query is read in),
    so the query that runs computes what it means there: ``LOG(b, x)`` (base first; ``LOG(x)`` is base 10) is polars'
    ``LOG(x, b)``, which swapped the arguments (``LOG(2, 8)`` was 1/3); ``POWER`` is a DOUBLE, where polars computed
    integers in Int64 and wrapped (``POWER(2, 70)`` was 0); ``/`` is a DOUBLE division (polars divided a decimal
    such as ``100.0 * COUNT(*)`` as a decimal and raised on a zero divisor, where DuckDB's share is NaN); ``SUM`` of
    integers is exact, where polars summed an Int64 in Int64 and wrapped past 2**63 (see :func:`_exact_sum`); a regex
    match ``~`` reads its pattern as RE2 (:func:`~streams.contracts.patterns.re2_to_rust`)."""
    for node in list(tree.find_all(exp.Log, exp.Pow)):
        if isinstance(node, exp.Log):
            base, value = node.this, node.expression
            if value is None:
                base, value = exp.Literal.number(10), base
            node.set("this", value)
            node.set("expression", base)
        else:
            node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("DOUBLE")))
    for div in list(tree.find_all(exp.Div)):  # DuckDB's `/` is a DOUBLE division (polars raised on a decimal / 0)
        if not (isinstance(div.this, exp.Cast) and div.this.to.this is exp.DataType.Type.DOUBLE):
            div.set("this", exp.Cast(this=div.this, to=exp.DataType.build("DOUBLE")))
    for match in list(tree.find_all(exp.RegexpLike)):  # RE2's ASCII \\d, \\w, \\s, \\b (a literal: _check_node)
        match.set("expression", exp.Literal.string(re2_to_rust(match.expression.this)))
    for total in list(tree.find_all(exp.Sum)):  # after: it rewrites copies of its argument
        _exact_sum(total)


def _exact_sum(node: exp.Sum) -> None:
    """``SUM(x)`` as ``SUM((x) + CAST(0 AS HUGEINT))``: integers (and booleans) are summed in Int128, exactly, as
    DuckDB sums a BIGINT into a HUGEINT; a float or decimal ``x`` keeps its type (the sum is Float64 / Decimal, and a
    Float32 is summed in Float64, as DuckDB sums a FLOAT). Left as written where no sum can leave Int64: the
    argument is a small integer literal or a ``CASE`` choosing only such literals (``SUM(CASE WHEN ... THEN 1 ELSE 0
    END)``, the usual count: Int128 arithmetic costs ~10 ns a row)."""
    zero = exp.Cast(this=exp.Literal.number(0), to=exp.DataType.build("INT128"))
    arg = node.this
    targets = arg.expressions if isinstance(arg, exp.Distinct) else [arg]
    for target in targets:
        if target is None or isinstance(target, exp.Star) or _small(target):
            continue
        if isinstance(target, exp.Add) and target.expression == zero:
            continue  # already exact (a checked query checked again)
        target.replace(exp.Add(this=exp.Paren(this=target.copy()), expression=zero.copy()))


def _small(node: exp.Expression) -> bool:
    """True when every value of ``node`` is NULL or an integer literal below 2**31 (so a sum of fewer than 2**32 rows
    of it fits Int64)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Null):
        return True
    if isinstance(node, exp.Neg):
        return _small(node.this)
    if isinstance(node, exp.Literal):
        return node.is_int and abs(int(node.this)) < 2**31
    if isinstance(node, exp.Case):
        default = node.args.get("default")
        return all(_small(branch.args["true"]) for branch in node.args.get("ifs", [])) and (
            default is None or _small(default)
        )
    if isinstance(node, exp.If):
        other = node.args.get("false")
        return _small(node.args["true"]) and (other is None or _small(other))
    return False


def _check_qualifiers(tree: exp.Expression, tables: tuple[str, ...]) -> None:
    """Refuse a column qualified by a name no ``FROM`` of the query binds (``other.x``; ``batch.x`` under
    ``FROM orders``; ``orders.x`` under ``FROM orders AS o``; an unquoted nested path ``customer.age``):
    polars cannot resolve it, so every batch got an error verdict where the load gives a ``file:line`` error."""
    bound = {t.alias_or_name for t in tree.find_all(exp.Table)} | {q.alias for q in tree.find_all(exp.Subquery)}
    for column in tree.find_all(exp.Column):
        if column.table and (column.table not in bound or column.args.get("db") is not None):
            raise _fail(
                f"column {column.sql(dialect=DIALECT)} is qualified by {column.table!r}, which no FROM of the query "
                f"names: qualify it by the relation it reads ({_names(tables)}, as FROM names it) or, for a nested "
                f'property, quote its path: "{".".join(p.name for p in column.parts)}"'
            )


def _widened(node: exp.Expression, widen: frozenset[str]) -> exp.Expression:
    """``node`` read as ``BIGINT`` where it is a narrow integer column of the bound object: a column of a
    ``SELECT`` reading the object itself (a subquery's outputs were widened inside it), not an alias the
    ``ORDER BY`` / ``HAVING`` refers to (``SUM(x * x) AS x`` still widens the ``x`` summed)."""
    if not (isinstance(node, exp.Column) and node.name in widen) or isinstance(node.parent, exp.Cast):
        return node
    select = node.find_ancestor(exp.Select)
    source = select.args.get("from_") or select.args.get("from") if select is not None else None
    if select is None or source is None or not isinstance(source.this, exp.Table):
        return node
    clause = node.find_ancestor(exp.Order, exp.Having, exp.Select)
    if clause is not select and node.name in {e.alias for e in select.expressions if isinstance(e, exp.Alias)}:
        return node
    cast = exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
    if node.parent is select:  # a bare projection keeps its name for an outer query
        return exp.Alias(this=cast, alias=exp.to_identifier(node.name))
    return cast


def _check_node(node: exp.Expression, tables: tuple[str, ...]) -> None:
    if isinstance(node, exp.Join):
        raise _fail("joins are not allowed in a SQL rule (also self joins: their cost grows with the batch squared)")
    if isinstance(node, exp.Window):
        raise _fail("window functions (OVER ...) are not allowed in a SQL rule")
    if isinstance(node, exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise _fail(
                f"table function {node.this.sql(dialect=DIALECT)[:60]!r} is not allowed; "
                f"a SQL rule reads only {_names(tables)}"
            )
        if node.args.get("db") or node.args.get("catalog") or node.name not in tables:
            raise _fail(
                f"relation {node.sql(dialect=DIALECT)!r} is not allowed; a SQL rule reads only {_names(tables)}"
            )
        return
    if isinstance(node, exp.RegexpLike):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise _fail("a regex match in a SQL rule needs a literal pattern")
        problem = regex_problem(pattern.this)
        if problem is not None:
            raise _fail(f"the pattern {pattern.this!r} cannot run on the engine's regex (Rust syntax): {problem}")
    if isinstance(node, (exp.StddevPop, exp.VariancePop)):
        name = "VAR_POP" if isinstance(node, exp.VariancePop) else "STDDEV_POP"
        raise _fail(
            f"function {name!r} cannot run on the engine (polars SQL has no population variance); use the sample "
            "VARIANCE (VAR_SAMP) or STDDEV (STDDEV_SAMP)"
        )
    if isinstance(node, (exp.Anonymous, exp.Func)) and not isinstance(node, _ALLOWED):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        raise _fail(f"function {name.upper()!r} is not allowed in a SQL rule; allowed are {ALLOWED_FUNCTIONS}")
    if not isinstance(node, _ALLOWED):
        raise _fail(f"{node.key.upper()} is not allowed in a SQL rule (one SELECT over the bound object only)")


def _names(tables: tuple[str, ...]) -> str:
    return " or ".join(repr(t) for t in tables)
