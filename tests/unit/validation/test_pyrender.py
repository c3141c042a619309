"""Failure cases of a few rows rendered in Python (``streams.validation.pyrender``) equal polars' rendering byte
for byte: a row-level expression's rows as JSON (``render.encoded_rows``, polars' ``struct.json_encode``) and a
value's text (``render._text``, a cast to String), the paths for many rows and for the dtypes Python does not
render. Generated values of every dtype the fast path renders, nasty floats and strings included, redacted
columns, and the dtypes it leaves to polars."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract
from streams.validation import compile_plan, render
from streams.validation.pyrender import rows_json, value_texts
from streams.validation.render import _redacted, _text, encoded_rows

_INT_RANGES = {
    pl.Int8: (-(1 << 7), (1 << 7) - 1),
    pl.Int16: (-(1 << 15), (1 << 15) - 1),
    pl.Int32: (-(1 << 31), (1 << 31) - 1),
    pl.Int64: (-(1 << 63), (1 << 63) - 1),
    pl.UInt8: (0, (1 << 8) - 1),
    pl.UInt16: (0, (1 << 16) - 1),
    pl.UInt32: (0, (1 << 32) - 1),
    pl.UInt64: (0, (1 << 64) - 1),
}
_NASTY_FLOATS = [
    *(float(f"{m}e{e}") for e in range(-330, 310) for m in ("1", "1.5", "-1.2345678901234567", "9.999999999999999")),
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-5, 9.99999e-6, 1e-4, 1e16,
    9999999999999998.0, 0.1 + 0.2, float("nan"), float("inf"), float("-inf"),
]  # fmt: skip
_NASTY_TEXT = ['a"b', "back\\slash", "\x00\x01\x1f\x7f\x80", "\b\f\n\r\t", "é 中文 😀", "\u2028\u2029", "</script>", ""]
_DAY_MS = 86_400_000
_YEAR_1_MS = -62_135_596_800_000  # 0001-01-01 in ms since the epoch
_YEAR_10000_MS = 253_402_300_800_000  # 10000-01-01
_UNITS = {"ms": 1, "us": 1_000, "ns": 1_000_000}


def _values(dtype: pl.DataType) -> st.SearchStrategy[Any]:
    """Physical values (or Python values) of ``dtype``, some null."""
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]  # type: ignore[index]
        plain: st.SearchStrategy[Any] = st.integers(low, high) | st.sampled_from([low, high, 0, -1 if low else 1])
    elif dtype == pl.Float64:
        plain = st.floats() | st.sampled_from(_NASTY_FLOATS) | st.floats(-1e-3, 1e-3)  # (exponents -9 to -4)
    elif dtype == pl.Float32:
        plain = st.floats(width=32) | st.sampled_from([0.1, 1e-7, 3.4e38, 1e-45, 16777217.0, float("nan")])
    elif dtype == pl.String:
        plain = st.text() | st.sampled_from(_NASTY_TEXT) | st.characters().map(str)
    elif dtype == pl.Boolean:
        plain = st.booleans()
    elif dtype == pl.Date:  # days, past years 1 to 9999 too (polars writes those; Python leaves them to polars)
        plain = st.integers(-800_000, 3_000_000) | st.sampled_from([-719_162, -719_163, 2_932_896, 2_932_897, 0, -1])
    elif isinstance(dtype, pl.Datetime):  # units since the epoch
        per_ms = _UNITS[dtype.time_unit or "us"]
        low, high = max(_YEAR_1_MS * per_ms, -(1 << 63)), min(_YEAR_10000_MS * per_ms - 1, (1 << 63) - 1)
        bounds = [low, high, max(low - 1, -(1 << 63)), min(high + 1, (1 << 63) - 1)]  # (ns: all of int64)
        within = st.integers(low, high)
        near = st.integers(-3 * _DAY_MS * per_ms, 3 * _DAY_MS * per_ms)  # (around the epoch: negative fractions)
        units = st.sampled_from([1, 7, 1000, 1_000_000, 999_999_999, 1_000_000_000])  # every fraction length
        scaled = st.builds(lambda s, u: s * u, st.integers(-(10**6), 10**6), units)
        plain = within | near | st.sampled_from(bounds) | scaled
    else:  # pl.Null
        return st.none()
    return st.none() | plain


_DTYPES: list[pl.DataType] = [
    *_INT_RANGES, pl.Float64, pl.Float32, pl.String, pl.Boolean, pl.Null, pl.Date,
    *(pl.Datetime(unit, zone) for unit in ("ms", "us", "ns") for zone in (None, "UTC")),
]  # fmt: skip


def _series(name: str, dtype: pl.DataType, values: list[Any]) -> pl.Series:
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return pl.Series(name, values, dtype=pl.Int32 if dtype == pl.Date else pl.Int64).cast(dtype)
    return pl.Series(name, values, dtype=dtype)


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pl.DataFrame, frozenset[str]]:
    rows = draw(st.integers(1, 8))
    names = draw(st.lists(st.text(min_size=1) | st.sampled_from(_NASTY_TEXT[:-1]), min_size=1, max_size=5, unique=True))
    columns = []
    for name in names:
        dtype = draw(st.sampled_from(_DTYPES))
        columns.append(_series(name, dtype, draw(st.lists(_values(dtype), min_size=rows, max_size=rows))))
    redacted = frozenset(draw(st.lists(st.sampled_from(names), unique=True)))
    return pl.DataFrame(columns), redacted


def _python(frame: pl.DataFrame, redacted: frozenset[str]) -> list[str] | None:
    return rows_json([(c.name, c, c.name in redacted) for c in frame.get_columns()])


def _polars(frame: pl.DataFrame, redacted: frozenset[str]) -> list[str]:
    return encoded_rows(frame.clone(), tuple(frame.columns), redacted).to_list()


def _in_python_range(frame: pl.DataFrame) -> bool:
    """Whether every date and datetime of ``frame`` is within years 1 to 9999 (Python's, the fast path's)."""
    for column in frame.get_columns():
        if column.dtype == pl.Date or isinstance(column.dtype, pl.Datetime):
            years = column.dt.year().drop_nulls()
            if len(years) and (years.min() < 1 or years.max() > 9999):  # type: ignore[operator]
                return False
    return True


@settings(max_examples=600, deadline=None)
@given(_frames())
@example((pl.DataFrame({"0": [None], "*": [None]}, schema={"0": pl.Int8, "*": pl.Int8}), frozenset()))  # CI found it
@example((pl.DataFrame({"^a.*$": ["x"], "a": [1]}), frozenset({"a"})))
def test_python_rows_equal_polars_json_encode(case: tuple[pl.DataFrame, frozenset[str]]) -> None:
    frame, redacted = case
    got = _python(frame, redacted)
    shown = pl.DataFrame([c for c in frame.get_columns() if c.name not in redacted])  # (names may be `*` or regexes)
    if _in_python_range(shown):
        assert got == _polars(frame, redacted)
    else:  # a year Python has not: left to polars
        assert got is None


@pytest.mark.parametrize("dtype", _DTYPES, ids=str)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_each_dtype_renders_in_python_as_polars(dtype: pl.DataType, data: st.DataObject) -> None:
    values = data.draw(st.lists(_values(dtype), min_size=1, max_size=12))
    frame = pl.DataFrame([_series("v", dtype, values)])
    if not _in_python_range(frame):
        frame = frame.filter(pl.col("v").is_null() | pl.col("v").dt.year().is_between(1, 9999))
    if frame.height:
        assert _python(frame, frozenset()) == _polars(frame, frozenset())


def test_nasty_floats_render_as_polars() -> None:
    frame = pl.DataFrame({"x": pl.Series(_NASTY_FLOATS, dtype=pl.Float64)})
    got = _python(frame, frozenset())
    assert got == _polars(frame, frozenset())
    assert got is not None and '{"x":1e-7}' in got and '{"x":0.00001}' in got and '{"x":null}' in got


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("x", [Decimal("1.50"), None], dtype=pl.Decimal(10, 2)),
        pl.Series("x", [time(1, 2, 3), None]),
        pl.Series("x", [timedelta(seconds=1), None]),
        pl.Series("x", [[1, 2], None]),
        pl.Series("x", [{"a": 1}, None]),
        pl.Series("x", ["a", None], dtype=pl.Categorical),
        pl.Series("x", [b"\x00", None]),
        pl.Series("x", [datetime(2026, 7, 1), None]).dt.replace_time_zone("Europe/Paris"),
        pl.Series("x", [None, 3_000_000], dtype=pl.Int32).cast(pl.Date),
    ],
    ids=["decimal", "time", "duration", "list", "struct", "categorical", "binary", "paris", "year-10184"],
)
def test_other_dtypes_are_left_to_polars(column: pl.Series) -> None:
    assert rows_json([("x", column, False)]) is None


def test_redacted_columns_of_any_dtype_render_as_polars() -> None:
    frame = pl.DataFrame({
        "b": pl.Series([b"\x00", None, b"\x01"]),
        "l": pl.Series([[1], [2], None]),
        "f": pl.Series([float("nan"), None, 1.0]),
        "s": pl.Series(["x", "y", "z"]),
    })  # fmt: skip
    redacted = frozenset(frame.columns)
    assert _python(frame, redacted) == _polars(frame, redacted)


CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:rowjson
name: rowjson
version: 1.0.0
status: active
schema:
  - name: things
    properties:
      - {name: a, logicalType: integer}
      - {name: f, logicalType: number}
      - {name: s, logicalType: string, classification: restricted}
    quality:
      - {name: a_below_f, type: custom, engine: expression, implementation: "a < f"}
"""


@pytest.mark.parametrize("extra", ["plain", "decimal", "list", "paris"])
def test_expression_cases_equal_through_python_and_polars(extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's cases of a row-level expression (the worker's sample and the whole frame) are the same when the
    rows are encoded in Python and when every row goes through polars; dtypes Python does not render fall back."""
    n = 200
    columns = {
        "plain": pl.Series("x", list(range(n)), dtype=pl.Float32),
        "decimal": pl.Series("x", [Decimal(i) / 7 for i in range(n)], dtype=pl.Decimal(12, 4)),
        "list": pl.Series("x", [[i, None] for i in range(n)]),
        "paris": pl.Series("x", [datetime(2026, 1, 1) + timedelta(hours=i) for i in range(n)]).dt.replace_time_zone(
            "Europe/Paris"
        ),
    }
    frame = pl.DataFrame({
        "a": pl.Series([i if i % 3 else 10**6 for i in range(n)], dtype=pl.Int64),
        "f": [float(i) + 0.5 if i % 5 else 1e-7 for i in range(n)],
        "s": [f'é"{i}\n' if i % 2 else None for i in range(n)],
    }).with_columns(columns[extra])  # fmt: skip
    contract = parse_contract(CONTRACT)

    def cases() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        report = compile_plan(contract).validate(frame)
        sample = report.cases_of("a_below_f", 20).to_dicts()
        assert compile_plan(contract).validate(frame).case_records("a_below_f", 20) == sample  # (listed, no frame)
        whole = compile_plan(contract).validate(frame).failure_cases.to_dicts()
        return sample, whole

    fast = cases()
    monkeypatch.setattr(render, "_PYTHON_ROWS", 0)
    assert fast == cases()
    assert len(fast[0]) == 20 and all(c["failure_case"].startswith('{"a":') for c in fast[0])


_TEXT_DTYPES: list[pl.DataType] = [*_INT_RANGES, pl.Float64, pl.String, pl.Boolean, pl.Null]


@pytest.mark.parametrize("dtype", _TEXT_DTYPES, ids=str)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_value_texts_equal_polars_cast(dtype: pl.DataType, data: st.DataObject) -> None:
    """A value's text (a column rule's ``failure_case``) read one by one or gathered, plain or redacted."""
    column = _series("v", dtype, data.draw(st.lists(_values(dtype), min_size=1, max_size=40)))
    rows = data.draw(st.lists(st.integers(0, len(column) - 1), min_size=1, max_size=40).map(sorted))
    redacted = data.draw(st.booleans())
    expected = _text(column[pl.Series(rows, dtype=pl.UInt32)])
    assert value_texts(column, rows, redacted) == (_redacted(expected) if redacted else expected).to_list()


def test_value_texts_of_nasty_floats() -> None:
    column = pl.Series("v", _NASTY_FLOATS, dtype=pl.Float64)
    rows = list(range(len(column)))
    got = value_texts(column, rows)
    assert got == _text(column).to_list()
    assert got is not None and {"NaN", "inf", "-inf", "1e-7", "0.00001", "1e+16"} <= set(got)


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("x", [0.1, None], dtype=pl.Float32),  # (cast: the float's shortest digits, "0.1")
        pl.Series("x", [datetime(2026, 1, 1), None]),
        pl.Series("x", [[1], None]),
        pl.Series("x", [b"\x00", None]),
        pl.Series("x", [Decimal("1.5"), None]),
    ],
    ids=["float32", "datetime", "list", "binary", "decimal"],
)
def test_value_texts_leave_other_dtypes_to_polars(column: pl.Series) -> None:
    assert value_texts(column, [0, 1]) is None
    assert value_texts(column, [0, 1], redacted=True) is None  # (nested nulls redact as text: "null")
