"""The result of validating one batch against one schema object of a contract.

A :class:`ValidationReport` is *data*: per-rule results (:class:`CheckResult`), a
per-row verdict (``valid_mask``), the per-row list of rules each row breaks
(``violations``) and pandera-shaped ``failure_cases``. Reports are produced by
:meth:`streams.validation.engine.CompiledPlan.validate`; nothing here raises on
bad data.
"""

from __future__ import annotations

import dataclasses as _dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import polars as pl

from streams.contracts.model import Severity
from streams.validation.cases import FAILURE_CASE_SCHEMA, FailureCases, concat_cases, empty_failure_cases
from streams.validation.rowlists import RowsField, RuleLists

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

__all__ = [
    "FAILURE_CASE_SCHEMA",
    "REDACTED",
    "CheckResult",
    "FailureCases",
    "ValidationReport",
    "as_text",
    "bool_array",
    "clean_verdicts",
    "concat_cases",
    "empty_failure_cases",
    "lazy_verdicts",
    "redact",
    "verdicts",
]

REDACTED = "[REDACTED]"


def as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Render values as failure-case strings the way pandera does (nested values as JSON)."""
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
        return pl.struct(jsonable(expr, dtype).alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    if dtype == pl.Object:
        return expr.map_elements(lambda v: f"{v}", return_dtype=pl.String)
    if dtype == pl.Binary:
        return expr.bin.encode("hex")
    return expr.cast(pl.String)


def has_binary(dtype: PolarsDataType) -> bool:
    """``dtype`` is binary or holds binary values (in lists, arrays or struct fields, at any depth)."""
    if dtype == pl.Binary:
        return True
    if isinstance(dtype, (pl.List, pl.Array)):
        return has_binary(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(has_binary(f.dtype) for f in dtype.fields)
    return False


def jsonable(expr: pl.Expr, dtype: PolarsDataType) -> pl.Expr:
    """``expr`` with its binary values as hex text, at any depth, as a binary column's own cases show them: polars
    panics when it encodes bytes as JSON (an Arrow message or a Parquet file may hold them where text is declared).
    Unchanged when ``dtype`` holds no binary."""
    if not has_binary(dtype):
        return expr
    if dtype == pl.Binary:
        return expr.bin.encode("hex")
    if isinstance(dtype, pl.Array):
        return jsonable(expr.arr.to_list(), pl.List(dtype.inner))
    if isinstance(dtype, pl.List):
        return expr.list.eval(jsonable(pl.element(), dtype.inner))
    assert isinstance(dtype, pl.Struct)
    fields = [jsonable(expr.struct.field(f.name), f.dtype).alias(f.name) for f in dtype.fields]
    return pl.when(expr.is_null()).then(None).otherwise(pl.struct(fields))


def redact(expr: pl.Expr) -> pl.Expr:
    """``[REDACTED]`` in place of every non-null value."""
    return pl.when(expr.is_null()).then(pl.lit(None, dtype=pl.String)).otherwise(pl.lit(REDACTED))


def bool_array(mask: pl.Series) -> np.ndarray:
    """A failure mask as a numpy Boolean array (null: False, a pass): its Arrow bits unpacked (a sixth of
    ``to_numpy``'s cost at 100k rows), and with its validity bits where it holds nulls."""
    if mask.dtype != pl.Boolean:  # (a mask of nulls only)
        return mask.cast(pl.Boolean).fill_null(False).to_numpy()
    bits = mask.to_arrow()
    values = _unpacked(bits.buffers()[1], bits.offset, len(bits))
    if bits.null_count:
        values &= _unpacked(bits.buffers()[0], bits.offset, len(bits))
    return values


def _unpacked(buffer: Any, offset: int, length: int) -> np.ndarray:
    """``length`` bits of an Arrow bitmap from bit ``offset``, as a numpy Boolean array."""
    start = offset % 8
    raw = np.frombuffer(buffer, dtype=np.uint8)[offset // 8 : (offset + length + 7) // 8]
    return np.unpackbits(raw, bitorder="little")[start : start + length].view(np.bool_)


def verdicts(
    rows: int,
    failing: list[tuple[np.ndarray, str, bool]],
    tables: dict[tuple[str, ...], Any] | None = None,
    *,
    judge: bool = True,
) -> tuple[pl.Series, pl.Series, pl.Series | None]:
    """:func:`lazy_verdicts` with the rule-name lists gathered."""
    valid, violations, gating = lazy_verdicts(rows, failing, tables, judge=judge)
    return valid, _gathered(violations), None if gating is None else _gathered(gating)


def _gathered(lists: pl.Series | RuleLists) -> pl.Series:
    return lists.series() if isinstance(lists, RuleLists) else lists


def lazy_verdicts(
    rows: int,
    failing: list[tuple[np.ndarray, str, bool]],
    tables: dict[tuple[str, ...], Any] | None = None,
    *,
    judge: bool = True,
) -> tuple[pl.Series, pl.Series | RuleLists, pl.Series | RuleLists | None]:
    """``valid_mask``, ``violations`` and ``gating_violations`` of a batch of ``rows`` rows from the
    failure masks of the failing rules (the last lists only the rules that gate rows: ``violations``
    itself when every failing rule gates, None when none does: every row is valid).

    ``failing`` holds ``(mask, rule name, gates rows)``, the masks numpy Boolean arrays (see
    :func:`bool_array`). Rule-name lists are built once per distinct combination of failed rules (a
    bit code per row, 63 rules a word), then gathered: ``concat_list`` over per-rule columns is two
    orders of magnitude slower. With at most ``_FULL_TABLE`` failing rules the table has an entry for
    every code (one byte), so codes index it directly; it is kept in ``tables`` (per list of rule names)
    for the next batch. The gating lists come from the same codes (a second table). The codes and the
    verdict are computed in numpy: at a hundred failing rows a polars select's planning costs more. The
    lists of a failing batch are returned as :class:`~streams.validation.rowlists.RuleLists` (codes and
    table, gathered when read: most readers need the failing rows' only, or none).
    """
    if not failing:
        valid, none = clean_verdicts(rows)
        return valid, none, none
    gating = [m for m, _, gates in failing if gates]
    if not gating:  # only non-gating rules failed (thresholded, warnings): every row is valid
        valid, violations, _ = lazy_verdicts(rows, [(m, name, True) for m, name, _ in failing], tables, judge=False)
        return valid, violations, None  # no row has a gating violation: ValidationReport.gating() builds them
    split = len(gating) < len(failing)  # else the gating lists are the violations
    full = len(failing) <= _FULL_TABLE
    codes = _codes([m for m, _, _ in failing]) if full else None
    if not judge:
        valid = clean_verdicts(rows)[0]
    elif codes is not None:  # a row is valid when it fails no gating rule: no bit of one in its code
        if split:
            gates = sum(1 << i for i, (_, _, g) in enumerate(failing) if g)
            valid = pl.Series("valid", (codes & np.uint8(gates)) == 0)
        else:
            valid = pl.Series("valid", codes == 0)
    else:
        bad = gating[0].copy() if len(gating) > 1 else gating[0]
        for m in gating[1:]:
            bad |= m
        valid = pl.Series("valid", ~bad)
    if codes is not None:
        key = ("\0table", *(f"{name}\0{int(gates)}" for _, name, gates in failing))
        kept = tables.get(key) if tables is not None else None
        if kept is None:
            every: list[tuple[int, ...]] = [(code,) for code in range(1 << len(failing))]
            kept = (_names_table(every, failing).rechunk(), _names_table(every, failing, gating_only=True).rechunk())
            if tables is not None:
                if len(tables) >= _TABLES:
                    tables.pop(next(iter(tables)))
                tables[key] = kept
        names, gated_names = kept
        violations = RuleLists(codes, names)
        return valid, violations, RuleLists(codes, gated_names) if split else violations
    words = np.stack([_word([m for m, _, _ in failing[start : start + 63]]) for start in range(0, len(failing), 63)], 1)
    combos, at = np.unique(words, axis=0, return_inverse=True)
    keys = [tuple(int(w) for w in combo) for combo in combos]
    index = at.reshape(-1).astype(np.uint32)
    violations = RuleLists(index, _names_table(keys, failing))
    gated = RuleLists(index, _names_table(keys, failing, gating_only=True)) if split else violations
    return valid, violations, gated


def _codes(masks: list[np.ndarray]) -> np.ndarray:
    """The one-byte bit code of every row (bit i: the row fails mask i; at most 8 masks): each mask as bytes
    multiplied by its bit (numpy shifts bytes without SIMD: ~8x slower; ``where=`` slows down as masks fill)."""
    code = masks[0].view(np.uint8).copy()
    for i, m in enumerate(masks[1:], 1):
        code |= m.view(np.uint8) * np.uint8(1 << i)
    return code


def _word(masks: list[np.ndarray]) -> np.ndarray:
    """The 63-bit word of every row (bit i: the row fails mask i; at most 63 masks)."""
    word = np.zeros(len(masks[0]), dtype=np.int64)
    for i, m in enumerate(masks):
        word |= m.astype(np.int64) << np.int64(i)
    return word


_FULL_TABLE = 8  # failing rules up to which the violations table covers every bit code
_TABLES = 32  # tables kept per plan


_CLEAN: list[tuple[pl.Series, pl.Series]] = []  # the longest all-valid verdicts built so far
_CLEAN_MAX = 1 << 20  # rows up to which they are kept (8 MB of offsets); longer batches build their own


def clean_verdicts(rows: int) -> tuple[pl.Series, pl.Series]:
    """``valid_mask`` (all True) and ``violations`` (empty lists) of ``rows`` rows: slices (no copy)
    of the longest pair built so far, grown to the next power of two when a batch is longer. Building
    them per batch costs ~0.25 ms at 100k rows (fresh pages for the offsets), a tenth of a clean pass."""
    if rows > _CLEAN_MAX:
        return pl.Series("valid", [True], dtype=pl.Boolean).new_from_index(0, rows), _empty_lists(rows)
    kept = _CLEAN[0] if _CLEAN else None
    if kept is None or len(kept[0]) < rows:  # (the pair read once: another thread may replace it)
        size = 1 << max(rows - 1, 0).bit_length()
        kept = (pl.Series("valid", [True], dtype=pl.Boolean).new_from_index(0, size), _empty_lists(size))
        _CLEAN[:] = [kept]
    valid, none = kept
    return valid.slice(0, rows), none.slice(0, rows)


def _empty_lists(rows: int) -> pl.Series:
    """``rows`` empty rule-name lists, built from Arrow offsets (repeating an empty list costs 40x more)."""
    import pyarrow as pa

    offsets = pa.array(np.zeros(rows + 1, dtype=np.int64))
    return pl.Series("violations", pa.LargeListArray.from_arrays(offsets, pa.array([], pa.large_string())))


def _names_table(
    codes: list[tuple[int, ...]], failing: list[tuple[Any, str, bool]], gating_only: bool = False
) -> pl.Series:
    """The rule names of each bit code (a tuple of 63-bit words); only the gating ones with ``gating_only``."""
    names = [
        [
            name
            for i, (_, name, gates) in enumerate(failing)
            if words[i // 63] >> (i % 63) & 1 and (gates or not gating_only)
        ]
        for words in codes
    ]
    return pl.Series("violations", names, dtype=pl.List(pl.String))


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one rule on one batch.

    ``failures`` counts the rows failing the rule's row predicate (for a batch
    metric such as ``row_count`` or ``sql`` it is 1 when the metric breaks its
    threshold, else 0); ``failure_rate`` is ``failures / rows`` (0.0 for batch
    metrics and empty batches). ``value`` is the metric the threshold is applied
    to: the failing row count, the failing percentage (``unit: percent``) or the
    batch metric; it is ``None`` when the rule could not be executed, in which
    case ``error`` says why and ``passed`` is False. A uniqueness rule's value is ODCS's
    ``duplicateValues``: rows minus distinct values (nulls ignored); its ``failures`` are
    every row of a duplicated group (the rows it quarantines). The value of a SQL rule
    reading a classified column is ``None`` unless it is a bare ``COUNT``, and an ``error``
    over classified columns carries no message (redacted).
    """

    name: str
    column: str | None
    check: str
    severity: Severity
    failures: int
    failure_rate: float
    passed: bool
    value: float | int | None
    threshold: str
    dimension: str | None
    gates_rows: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form of one check."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {
            "name": self.name,
            "column": self.column,
            "check": self.check,
            "severity": self.severity.value,
            "failures": self.failures,
            "failure_rate": self.failure_rate,
            "passed": self.passed,
            "value": value,
            "threshold": self.threshold,
            "dimension": self.dimension,
            "gates_rows": self.gates_rows,
            "error": self.error,
        }


class _CasesField:
    """The ``failure_cases`` field: set from a frame or a :class:`FailureCases` description, read as the
    rendered frame (rendered on the first read, cached). :meth:`ValidationReport.replace` copies the
    description; ``dataclasses.replace`` reads the field, so it renders (correct, only slower)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _CasesField: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> pl.DataFrame: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:  # no default value: the field is required
            raise AttributeError(self.slot[1:])
        cases: FailureCases = obj.__dict__[self.slot]
        return cases.frame()

    def __set__(self, obj: object, value: pl.DataFrame | FailureCases) -> None:
        obj.__dict__[self.slot] = value if isinstance(value, FailureCases) else FailureCases.rendered(value)


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """Everything known about one validated batch.

    * ``passed``: every error-severity rule passes its threshold (a declared
      column missing from the batch fails that column's dtype rule);
    * ``valid_mask`` (Boolean, one per row): the row breaks no row-gating rule
      (error severity with a zero-tolerance threshold);
    * ``violations`` (List[String], one per row): names of every rule the row
      fails, gating or not, whatever the rule's threshold verdict;
    * ``gating_violations`` (List[String], one per row): only the rules that made
      the row invalid (error severity, zero tolerance, or an error-severity rule that
      could not run on the batch when ``on_rule_error`` is ``quarantine``): what a
      quarantined record's reasons list. Empty exactly where ``valid_mask`` is True;
      ``None`` when no row has one (it is not materialized) and on reports built by
      hand: read it through :meth:`gating`. Both lists are gathered from the rows' rule codes on
      their first read (:mod:`streams.validation.rowlists`); :meth:`violations_of` and
      :meth:`gating_of` gather only some rows';
    * ``failure_cases``: pandera's failure-case layout (``failure_case``,
      ``schema_context``, ``column``, ``check``, ``check_number``, ``index``) plus
      ``rule``. Values of redacted columns read ``[REDACTED]``. Built from a description
      (:class:`~streams.validation.cases.FailureCases`, :attr:`cases`) and rendered on the first
      read; :meth:`cases_of` renders only the first cases of one rule;
    * ``missing_columns`` / ``extra_columns``: declared columns absent from the
      batch, and batch columns the schema object does not declare (kept).
    """

    contract_id: str
    contract_version: str
    contract_sha256: str
    schema: str
    rows: int
    valid_rows: int
    invalid_rows: int
    passed: bool
    checks: tuple[CheckResult, ...]
    valid_mask: pl.Series
    violations: RowsField = RowsField()  # noqa: RUF009 (a descriptor: set a Series or RuleLists, read the Series)
    failure_cases: _CasesField = _CasesField()  # a frame or a FailureCases; read: the frame (see _CasesField)
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0
    gating_violations: RowsField = RowsField(optional=True)  # noqa: RUF009 (as violations, or None)

    @property
    def cases(self) -> FailureCases:
        """The description of the failure cases (rendered when read: :attr:`failure_cases`, :meth:`cases_of`)."""
        cases: FailureCases = self.__dict__["_failure_cases"]
        return cases

    def replace(self, **changes: Any) -> ValidationReport:
        """``dataclasses.replace(self, **changes)`` that hands the failure cases' description over unrendered
        (``dataclasses.replace`` reads every field it is not given, and reading ``failure_cases`` renders)."""
        changes.setdefault("failure_cases", self.cases)
        lists, gating = self.row_lists()
        changes.setdefault("violations", lists)
        changes.setdefault("gating_violations", gating)
        return _dataclasses.replace(self, **changes)

    def cases_of(self, rule: str, n: int) -> pl.DataFrame:
        """The first ``n`` failure cases of the rule called ``rule``: ``failure_cases.filter(pl.col("rule") ==
        rule).head(n)``, rendering only those cases when the frame has not been rendered."""
        return self.cases.of(rule, n)

    def case_records(self, rule: str, n: int) -> list[dict[str, Any]]:
        """``cases_of(rule, n).to_dicts()``, listed without building a frame when the cases are not rendered yet (what
        the worker's ``rule_violation`` events read)."""
        return self.cases.records(rule, n)

    def gating(self) -> pl.Series:
        """Per row, the rules that made it invalid (``violations`` of the invalid rows when the
        report carries no ``gating_violations``)."""
        if self.gating_violations is not None:
            return self.gating_violations
        empty = pl.lit([], dtype=pl.List(pl.String))
        frame = pl.DataFrame({"v": self.violations, "ok": self.valid_mask})
        return frame.select(pl.when(pl.col("ok")).then(empty).otherwise(pl.col("v")).alias("violations")).to_series()

    def row_lists(self) -> tuple[pl.Series | RuleLists, pl.Series | RuleLists | None]:
        """``violations`` and ``gating_violations`` as they are kept (a :class:`RuleLists` not gathered yet)."""
        fields = type(self).__dict__
        return fields["violations"].description(self), fields["gating_violations"].description(self)

    def violations_of(self, rows: Any) -> pl.Series:
        """``violations.gather(rows)``, without gathering the other rows' lists when they are not yet."""
        lists = self.row_lists()[0]
        return lists.of(rows) if isinstance(lists, RuleLists) else self.violations.gather(rows)

    def gating_of(self, rows: Any) -> pl.Series:
        """``gating().gather(rows)``, without gathering the other rows' lists when they are not yet."""
        lists = self.row_lists()[1]
        return lists.of(rows) if isinstance(lists, RuleLists) else self.gating().gather(rows)

    @property
    def rule_errors(self) -> dict[str, str]:
        """``{rule: error}`` of the rules that could not be evaluated on this batch."""
        return {c.name: c.error for c in self.checks if c.error is not None}

    def failed_checks(self) -> tuple[CheckResult, ...]:
        """The checks that did not pass, whatever their severity."""
        return tuple(c for c in self.checks if not c.passed)

    def check(self, name: str) -> CheckResult:
        """The result of the rule called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self, max_cases: int | None = None) -> dict[str, Any]:
        """The documented JSON form of the report.

        ``max_cases`` bounds the number of failure cases included (``None``: all).
        """
        cases = self.failure_cases if max_cases is None else self.failure_cases.head(max(max_cases, 0))
        return {
            "contract": {
                "id": self.contract_id,
                "version": self.contract_version,
                "sha256": self.contract_sha256,
            },
            "schema": self.schema,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "invalid_rows": self.invalid_rows,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "failure_cases": cases.to_dicts(),
        }
