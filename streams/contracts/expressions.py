"""Safe parsing of the little code a contract may carry.

Contracts never execute code. Two kinds of text are *parsed* with :mod:`ast` and
checked against an allow-list, then turned into data:

* row predicates over columns, e.g. ``loan_amount <= 10 * annual_income``
  (``type: custom``, ``engine: expression``) become an expression tree of nested
  tuples, which :func:`to_polars` turns into a ``polars.Expr``;
* pandera built-in check calls, e.g. ``Check.in_range(0, 1)`` (``type: custom``,
  ``engine: pandera``), become ``(method, args, kwargs)`` with literal arguments only.

Expression tree nodes::

    ("col", name) | ("lit", value)
    ("binop", "+"|"-"|"*"|"/"|"//"|"%"|"**", left, right)
    ("cmp", "<"|"<="|">"|">="|"=="|"!=", left, right)
    ("and", left, right) | ("or", left, right) | ("not", x) | ("neg", x)
    ("call", "abs"|"is_null"|"is_not_null", x)
    ("isin", x, (values...))
    ("wide", x)   # an integer column narrower than 64 bits, read as Int64 for arithmetic (rendered as x)
    ("unit", x, "us"|"ns")  # a timestamp column or literal read in the finer unit of a comparison (rendered as x)
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import operator
import re
from collections.abc import Callable
from typing import Any, Literal

import polars as pl

from streams.errors import ExpressionError

Node = tuple[Any, ...]

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_FUNCS = ("abs", "is_null", "is_not_null")
_POLARS_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

EXPRESSION_HELP = (
    "column names, numeric/string/boolean literals, + - * / // % **, comparisons "
    "(< <= > >= == !=, chains allowed), and/or/not, `x in [literals]`, abs(x), is_null(x), is_not_null(x)"
)


#: Bounds on contract code: text length, syntax-tree nodes and nesting depth. A contract is
#: untrusted input; these keep parsing (and the polars plan built from it) small and recursion-free.
MAX_EXPRESSION_CHARS = 4_000
MAX_EXPRESSION_NODES = 1_000
MAX_EXPRESSION_DEPTH = 100


def _parse_bounded(text: str, what: str) -> ast.Expression:
    """``ast.parse`` in eval mode, refusing text that is too long, too big or too deep."""
    body = text.strip()
    if len(body) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"the {what} is {len(body):,} characters long; contract code is limited to {MAX_EXPRESSION_CHARS:,}"
        )
    # bracket/`not` nesting is what makes CPython's own parser recurse: bound it before parsing
    depth = deepest = 0
    for ch in body:
        depth += ch in "([{"
        depth -= ch in ")]}"
        deepest = max(deepest, depth)
    nots = len(re.findall(r"\bnot\b", body))
    if deepest > MAX_EXPRESSION_DEPTH or nots > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(
            f"the {what} is nested too deeply; contract code is limited to {MAX_EXPRESSION_DEPTH} levels"
        )
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {what} {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"the {what} is nested too deeply to parse") from None
    _check_size(tree, what)
    return tree


def _check_size(tree: ast.AST, what: str) -> None:
    """Count nodes and measure depth without recursion."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_EXPRESSION_NODES:
            raise ExpressionError(f"the {what} is too large; contract code is limited to {MAX_EXPRESSION_NODES} terms")
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(
                f"the {what} is nested too deeply; contract code is limited to {MAX_EXPRESSION_DEPTH} levels"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def parse_expression(text: str) -> Node:
    """Parse a row predicate into an expression tree, or raise :class:`ExpressionError`."""
    tree = _parse_bounded(text, "expression")
    return _node(tree.body, text)


def _node(n: ast.AST, text: str) -> Node:
    if isinstance(n, ast.Name):
        return ("col", n.id)
    if isinstance(n, ast.Attribute) and (path := _dotted(n)) is not None:
        return ("col", path)  # a nested field, named by its dotted path (customer.address.zip)
    if isinstance(n, ast.Constant) and (n.value is None or isinstance(n.value, (int, float, str, bool))):
        return ("lit", _in_range(n.value))
    if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
        return ("binop", _BINOPS[type(n.op)], _node(n.left, text), _node(n.right, text))
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
        inner = _node(n.operand, text)
        if inner[0] == "lit" and isinstance(inner[1], (int, float)):
            return ("lit", -inner[1])
        return ("neg", inner)
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
        return ("not", _node(n.operand, text))
    if isinstance(n, ast.BoolOp):
        kind = "and" if isinstance(n.op, ast.And) else "or"
        out = _node(n.values[0], text)
        for v in n.values[1:]:
            out = (kind, out, _node(v, text))
        return out
    if isinstance(n, ast.Compare):
        parts: list[Node] = []
        left = _node(n.left, text)
        for op, comp in zip(n.ops, n.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = _literal_list(comp, text)
                part: Node = ("isin", left, values)
                parts.append(("not", part) if isinstance(op, ast.NotIn) else part)
                left = ("lit", None)
                continue
            if type(op) not in _CMPOPS:
                break
            right = _node(comp, text)
            parts.append(("cmp", _CMPOPS[type(op)], left, right))
            left = right
        else:
            out = parts[0]
            for p in parts[1:]:
                out = ("and", out, p)
            return out
    if (
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in _FUNCS
        and len(n.args) == 1
        and not n.keywords
    ):
        return ("call", n.func.id, _node(n.args[0], text))
    snippet = ast.get_source_segment(text, n) or type(n).__name__
    raise ExpressionError(f"`{snippet}` is not allowed in a contract expression; allowed are {EXPRESSION_HELP}")


def _dotted(n: ast.AST) -> str | None:
    """``a.b.c`` when ``n`` is a chain of names, else None (``a.__class__`` is no path: refused)."""
    parts: list[str] = []
    while isinstance(n, ast.Attribute):
        if n.attr.startswith("_"):
            return None
        parts.append(n.attr)
        n = n.value
    return ".".join([n.id, *reversed(parts)]) if isinstance(n, ast.Name) else None


def _literal_list(n: ast.AST, text: str) -> tuple[Any, ...]:
    if isinstance(n, (ast.List, ast.Tuple, ast.Set)):
        return tuple(_literal(e, text) for e in n.elts)
    raise ExpressionError(f"`in` needs a literal list in {text!r}")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _in_range(value: Any) -> Any:
    """Integers must fit the engine's Int64 (polars cannot type a larger literal against a column)."""
    values = value if isinstance(value, (list, tuple, set)) else [value]
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and not INT64_MIN <= v <= INT64_MAX:
            raise ExpressionError(f"the integer {v} is outside the 64-bit range the engine computes in")
    return value


def _literal(n: ast.AST, text: str) -> Any:
    try:
        return _in_range(ast.literal_eval(n))
    except ExpressionError:
        raise
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        snippet = ast.get_source_segment(text, n) or type(n).__name__
        raise ExpressionError(f"`{snippet}` is not a literal; only literal arguments are allowed") from None


def columns(node: Node) -> set[str]:
    """The column names an expression tree reads."""
    if node[0] == "col":
        return {node[1]}
    out: set[str] = set()
    for part in node[1:]:
        if isinstance(part, tuple) and part and isinstance(part[0], str) and part[0] in _NODE_KINDS:
            out |= columns(part)
    return out


_NODE_KINDS = frozenset({"col", "lit", "binop", "cmp", "and", "or", "not", "neg", "call", "isin", "wide", "unit"})
_NS_RANGE = (-(2**63), 2**63)
_EPOCH = dt.datetime(1970, 1, 1)


def comparison_units(dtype: Any, bound: Any) -> tuple[Literal["us"] | None, Literal["ns"] | None]:
    """``(column unit, bound unit)``: how a ``Datetime`` column of ``dtype`` and a datetime ``bound`` are compared
    exactly (None: as they are). polars compares them in the coarser unit, truncating the finer side: a
    ``timestamp(ns)`` value 400 ns past a maximum passed it, and a ``timestamp(3)`` value (whole milliseconds)
    passed a minimum 500 microseconds past it. A bound beyond the nanosecond range is left in microseconds:
    truncating a column's nanoseconds cannot move a value across it."""
    if not (isinstance(dtype, pl.Datetime) and isinstance(bound, dt.datetime)) or dtype.time_unit == "us":
        return None, None
    if dtype.time_unit == "ms":
        return "us", None
    naive = bound.astimezone(dt.UTC).replace(tzinfo=None) if bound.tzinfo is not None else bound
    nanos = (naive - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    return (None, "ns") if _NS_RANGE[0] <= nanos < _NS_RANGE[1] else (None, None)


_ARITHMETIC = frozenset({"+", "-", "*", "//", "%", "**"})
#: integer dtypes whose arithmetic would wrap within their width: read as Int64 (exact) under arithmetic
NARROW_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32)


def type_literals(node: Node, dtype_of: Callable[[str], Any], read: Callable[[str, Any], Any]) -> Node:
    """``node`` typed by its columns' dtypes (``dtype_of(name)``, None if unknown).

    * Text literals compared with a date, time or timestamp column are read in its type. YAML and
      expressions have no date literal, and polars refuses to compare a temporal column with text: in
      ``d > '2024-01-01'``, ``'2024-01-01' <= d`` and ``d in ['2024-01-01']`` the text is read by
      ``read(text, dtype)`` (as ``logicalTypeOptions`` bounds are; it raises on text that is no date).
      Only a bare column against text literals is read: other text stays as written.
    * Integer columns narrower than 64 bits under arithmetic (``+ - * // % **``, unary ``-``, ``abs``) are
      read as Int64: polars computes in the column's width and wraps (an Int32 ``qty * price`` over 2**31
      turned negative, an Int8 ``x + 100`` with ``x = 100`` was ``-56``, a UInt8 ``x - 3`` with ``x = 1``
      was ``254``), where the expression means whole numbers. Int64 arithmetic still wraps past 2**63.
    """

    def temporal(side: Node) -> Any:
        if side[0] != "col":
            return None
        dtype = dtype_of(side[1])
        return dtype if isinstance(dtype, (pl.Date, pl.Datetime, pl.Time)) else None

    def exact(column: Node, literal: Node, dtype: Any) -> tuple[Node, Node]:
        column_unit, bound_unit = comparison_units(dtype, literal[1])
        return (
            ("unit", column, column_unit) if column_unit else column,
            ("unit", literal, bound_unit) if bound_unit else literal,
        )

    def wide(side: Node) -> Node:
        if side[0] == "col" and isinstance(dtype_of(side[1]), NARROW_INTEGERS):
            return ("wide", side)
        return side

    def walk(n: Node) -> Node:
        kind = n[0]
        if kind == "binop" and n[1] in _ARITHMETIC:
            return ("binop", n[1], wide(walk(n[2])), wide(walk(n[3])))
        if kind == "neg" or (kind == "call" and n[1] == "abs"):
            return (*n[:-1], wide(walk(n[-1])))
        if kind == "cmp":
            left, right = walk(n[2]), walk(n[3])
            if (t := temporal(left)) is not None and right[0] == "lit" and isinstance(right[1], str):
                left, right = exact(left, ("lit", read(right[1], t)), t)
            elif (t := temporal(right)) is not None and left[0] == "lit" and isinstance(left[1], str):
                right, left = exact(right, ("lit", read(left[1], t)), t)
            return ("cmp", n[1], left, right)
        if kind == "isin":
            x = walk(n[1])
            if (t := temporal(x)) is not None:
                return ("isin", x, tuple(read(v, t) if isinstance(v, str) else v for v in n[2]))
            if x[0] == "col" and (t := dtype_of(x[1])) is not None:
                return ("isin", x, member_values(n[2], t, x[1]))
            return ("isin", x, n[2])
        if kind in ("col", "lit", "wide", "unit"):
            return n
        return (kind, *(walk(p) if isinstance(p, tuple) and p and p[0] in _NODE_KINDS else p for p in n[1:]))

    return walk(node)


def member_values(values: tuple[Any, ...], dtype: Any, name: str) -> tuple[Any, ...]:
    """A value list (``x in [...]``, ``validValues``, ``Check.isin``) as values of the numeric, text or boolean
    column ``name`` of ``dtype``, so that polars' ``is_in`` can run (it refuses an Int8 column against a list
    of floats, a Float64 column against a list of integers). An integral number is an integer (``100.0`` is
    ``100``, as in JSON), an integer on a number column a float. :class:`ExpressionError` names a value that
    no value of the column can equal (``1.5`` on an integer, text on a number, a number on text, a boolean
    on either): pandera's ``Check.isin`` cannot evaluate such a list either (polars raises on every batch).
    Other dtypes (dates, times, decimals, lists) are left as written."""
    kind = (
        "integer" if dtype.is_integer() else "number" if dtype.is_float()
        else "text" if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))
        else "boolean" if dtype == pl.Boolean else None
    )  # fmt: skip
    if kind is None:
        return values
    out: list[Any] = []
    for v in values:
        if v is None or (kind == "text" and isinstance(v, str)) or (kind == "boolean" and isinstance(v, bool)):
            out.append(v)
        elif kind in ("integer", "number") and isinstance(v, (int, float)) and not isinstance(v, bool):
            if kind == "number":
                out.append(float(v))
            elif isinstance(v, int) or (math.isfinite(v) and v == int(v)):
                out.append(int(v))
            else:
                raise ExpressionError(
                    f"{name} is an integer property and {v!r} is no integer, so no value of it can equal "
                    f"{v!r}; drop {v!r} from the list or declare {name} a number"
                )
        else:
            noun = {"integer": "an integer", "number": "a number", "text": "text", "boolean": "a boolean"}[kind]
            raise ExpressionError(
                f"{name} is a {kind} property and {v!r} is not {noun}, so no value of it can equal {v!r} "
                f"(polars cannot compare them); write the value as {noun}"
            )
    return tuple(out)


def to_polars(node: Node) -> pl.Expr:
    """Turn an expression tree into a polars expression."""
    kind = node[0]
    if kind == "col":
        return pl.col(node[1])
    if kind == "lit":
        return pl.lit(node[1])
    if kind in ("binop", "cmp"):
        return _POLARS_BINOPS[node[1]](to_polars(node[2]), to_polars(node[3]))  # type: ignore[no-any-return]
    if kind == "and":
        return to_polars(node[1]) & to_polars(node[2])
    if kind == "or":
        return to_polars(node[1]) | to_polars(node[2])
    if kind == "not":
        return ~to_polars(node[1])
    if kind == "neg":
        return -to_polars(node[1])
    if kind == "call":
        inner = to_polars(node[2])
        return {"abs": inner.abs, "is_null": inner.is_null, "is_not_null": inner.is_not_null}[node[1]]()
    if kind == "isin":
        return to_polars(node[1]).is_in(list(node[2]))
    if kind == "wide":
        return to_polars(node[1]).cast(pl.Int64)
    if kind == "unit":
        return to_polars(node[1]).dt.cast_time_unit(node[2])
    raise ValueError(f"unknown expression node {kind!r}")


def to_text(node: Node) -> str:
    """A canonical rendering of an expression tree (used for stable rule names)."""
    kind = node[0]
    if kind == "col":
        return str(node[1])
    if kind == "lit":
        return _literal_text(node[1])
    if kind in ("binop", "cmp"):
        return f"({to_text(node[2])} {node[1]} {to_text(node[3])})"
    if kind in ("and", "or"):
        return f"({to_text(node[1])} {kind} {to_text(node[2])})"
    if kind == "not":
        return f"(not {to_text(node[1])})"
    if kind == "neg":
        return f"(-{to_text(node[1])})"
    if kind == "call":
        return f"{node[1]}({to_text(node[2])})"
    if kind == "isin":
        return f"({to_text(node[1])} in [{', '.join(_literal_text(v) for v in node[2])}])"
    if kind in ("wide", "unit"):  # typing, not text: type_literals adds it again from the columns' dtypes
        return to_text(node[1])
    raise ValueError(f"unknown expression node {kind!r}")


def _literal_text(value: Any) -> str:
    """A literal as the contract writes it: a date, time or timestamp read from text as that text's ISO form
    (``'2024-01-01'``; :func:`type_literals` reads it back), anything else as its ``repr``."""
    if isinstance(value, (dt.date, dt.time)):  # dt.datetime is a dt.date
        return repr(value.isoformat())
    return repr(value)


# --- pandera built-in check calls -------------------------------------------------

#: pandera built-in checks a contract may name, with their parameter names in order.
PANDERA_CHECKS: dict[str, tuple[str, ...]] = {
    "equal_to": ("value",),
    "eq": ("value",),
    "not_equal_to": ("value",),
    "ne": ("value",),
    "greater_than": ("min_value",),
    "gt": ("min_value",),
    "greater_than_or_equal_to": ("min_value",),
    "ge": ("min_value",),
    "less_than": ("max_value",),
    "lt": ("max_value",),
    "less_than_or_equal_to": ("max_value",),
    "le": ("max_value",),
    "in_range": ("min_value", "max_value", "include_min", "include_max"),
    "between": ("min_value", "max_value", "include_min", "include_max"),
    "isin": ("allowed_values",),
    "notin": ("forbidden_values",),
    "str_matches": ("pattern",),
    "str_contains": ("pattern",),
    "str_startswith": ("string",),
    "str_endswith": ("string",),
    "str_length": ("min_value", "max_value"),
}


def parse_check_call(text: str) -> tuple[str, dict[str, Any]]:
    """Parse ``Check.in_range(0, 1)`` (or ``pa.Check...``) into ``("in_range", {...})``.

    Only the methods in :data:`PANDERA_CHECKS` with literal arguments are accepted.
    """
    allowed = ", ".join(sorted(PANDERA_CHECKS))
    tree = _parse_bounded(text, "pandera check")
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        raise ExpressionError(f"{text!r} is not a pandera check call such as `Check.in_range(0, 1)`")
    owner = call.func.value
    owner_ok = (isinstance(owner, ast.Name) and owner.id == "Check") or (
        isinstance(owner, ast.Attribute) and owner.attr == "Check" and isinstance(owner.value, ast.Name)
    )
    method = call.func.attr
    if not owner_ok or method not in PANDERA_CHECKS:
        raise ExpressionError(f"{text!r} is not an allowed pandera check; allowed are Check.{{{allowed}}}")
    params = PANDERA_CHECKS[method]
    if len(call.args) > len(params):
        raise ExpressionError(f"{text!r} passes too many arguments to Check.{method}{params}")
    kwargs: dict[str, Any] = {}
    for pname, arg in zip(params, call.args, strict=False):
        kwargs[pname] = _literal(arg, text)
    for kw in call.keywords:
        if kw.arg not in params:
            raise ExpressionError(f"Check.{method} has no argument {kw.arg!r}; it takes {', '.join(params)}")
        kwargs[kw.arg] = _literal(kw.value, text)
    return method, kwargs
