"""The per-row failure cases of a validated batch rendered (:class:`CaseRendering`, the rendering half of
:class:`~streams.validation.failures.Reporter`): each failing rule's values at its rows as text, a row-level
expression's rows as JSON; a few rows per rule (the worker's samples) in plain Python
(:mod:`~streams.validation.pyrender`), more through polars' eager operations."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from streams.contracts.model import Op
from streams.validation.cases import by_rule, empty_failure_cases, listed_cases
from streams.validation.predicates import RuleSlot
from streams.validation.pyrender import rows_json, value_texts
from streams.validation.report import REDACTED, as_text, has_binary, jsonable, redact

_PYTHON_ROWS = 64  # rows per rule up to which cases are rendered in Python (streams.validation.pyrender)


class CaseRendering:
    """The rendering of failure cases from a schema object's rule slots and its redacted columns."""

    __slots__ = ()
    slots: tuple[RuleSlot, ...]
    redacted: frozenset[str]

    def row_cases(
        self,
        df: pl.DataFrame,
        frame: pl.DataFrame,
        originals: dict[str, str],
        specs: list[tuple[int, np.ndarray]],
    ) -> pl.DataFrame:
        """The failure cases of slot ``k`` at the rows ``rows`` (some of its failing rows, ascending) for
        each spec ``(k, rows)``, spec by spec; a spec whose values cannot be rendered is left out.

        Each rule's values are gathered at its rows and rendered in eager Series operations (a cast to
        text) or, for what has no eager form (a row-level expression's row as JSON, nested values), one
        select over the gathered rows: at a hundred cases a select of every rule's expressions costs more
        to plan than to run. Row-level expressions all show the batch's row as JSON: the rows failing any
        of them are rendered once and each rule's cases taken from them.
        """
        specs = [(k, rows) for k, rows in specs if len(rows)]
        if all(len(rows) <= _PYTHON_ROWS for _, rows in specs):  # the worker's samples: rendered in Python
            return self._few_cases(df, frame, originals, specs)
        shared = self._shared_rows(df, frame, originals, specs)
        kept, values = [], []
        for k, rows in specs:
            if shared is not None and self._is_row(k):
                union, rendered = shared
                value = None if rendered is None else rendered[pl.Series(np.searchsorted(union, rows), dtype=pl.UInt32)]
            else:
                value = self._values(k, df, frame, originals, rows)
            if value is not None:
                kept.append((k, rows))
                values.append(value)
        if not kept:
            return empty_failure_cases()
        value = values[0] if len(values) == 1 else pl.concat(values)
        constants = [self._constants(k) for k, _ in kept]
        return listed_cases(value, constants, [rows for _, rows in kept], keep=False)  # (many cases: not kept)

    def row_records(
        self, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], specs: list[tuple[int, np.ndarray]]
    ) -> dict[str, list[dict[str, Any]]]:
        """:meth:`row_cases` as ``to_dicts()`` gives its rows, per rule (name -> cases): a few rows per spec (the
        worker's event samples) are listed from their texts, without building a frame to turn back into dicts."""
        specs = [(k, rows) for k, rows in specs if len(rows)]
        if not all(len(rows) <= _PYTHON_ROWS for _, rows in specs):
            cases = by_rule(self.row_cases(df, frame, originals, specs))
            return {rule: part.to_dicts() for rule, part in cases.items()}
        listed: dict[str, list[dict[str, Any]]] = {}
        for k, rows, texts in self._few_texts(df, frame, originals, specs):
            context, column, check, number, name = self._constants(k)
            listed.setdefault(name, []).extend(
                {"failure_case": text, "schema_context": context, "column": column, "check": check,
                 "check_number": number, "index": index, "rule": name}
                for text, index in zip(texts, rows.tolist(), strict=True)
            )  # fmt: skip
        return listed

    def _few_cases(
        self, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], specs: list[tuple[int, np.ndarray]]
    ) -> pl.DataFrame:
        """:meth:`row_cases` of a few rows per spec: values as Python lists (:mod:`~streams.validation.pyrender`
        where their dtypes allow, else rendered by polars and listed), the frame built once from lists."""
        kept = self._few_texts(df, frame, originals, specs)
        if not kept:
            return empty_failure_cases()
        texts = [text for _, _, listed in kept for text in listed]
        return listed_cases(texts, [self._constants(k) for k, _, _ in kept], [rows for _, rows, _ in kept])

    def _few_texts(
        self, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], specs: list[tuple[int, np.ndarray]]
    ) -> list[tuple[int, np.ndarray, list[str | None]]]:
        """The ``failure_case`` texts of a few rows per spec: ``(slot, rows, texts)`` of each spec that renders."""
        kept: list[tuple[int, np.ndarray, list[str | None]]] = []
        shared: tuple[np.ndarray, list[Any] | None] | None = None
        if (rendered := self._shared_rows(df, frame, originals, specs)) is not None:
            shared = (rendered[0], None if rendered[1] is None else rendered[1].to_list())
        for k, rows in specs:
            rule, name = self.slots[k].rule, str(self.slots[k].rule.column)
            listed = None
            if shared is not None and self._is_row(k):
                union, every = shared
                if every is None:
                    continue
                listed = [every[i] for i in np.searchsorted(union, rows).tolist()]
            elif rule.op is not Op.EXPRESSION and not rule.key_columns:
                source = originals.get(name, name) if rule.op is Op.DTYPE else name
                listed = value_texts(frame.get_column(source), rows.tolist(), name in self.redacted)
            if listed is None:
                value = self._values(k, df, frame, originals, rows)
                if value is None:
                    continue
                listed = value.to_list()
            kept.append((k, rows, listed))
        return kept

    def _is_row(self, k: int) -> bool:
        """Whether slot ``k``'s cases are the batch's rows as JSON (a row-level expression)."""
        rule = self.slots[k].rule
        return rule.op is Op.EXPRESSION and not rule.key_columns

    def _shared_rows(
        self, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], specs: list[tuple[int, np.ndarray]]
    ) -> tuple[np.ndarray, pl.Series | None] | None:
        """With several row-level expressions, the rows failing any of them (ascending) rendered once as JSON (None:
        they cannot be), each rule's cases taken from them; None with fewer than two."""
        rows = [r for k, r in specs if self._is_row(k)]
        if len(rows) < 2:
            return None
        union = np.unique(np.concatenate(rows))
        first = next(k for k, _ in specs if self._is_row(k))
        return union, self._values(first, df, frame, originals, union)

    def _constants(self, k: int) -> tuple[Any, ...]:
        slot = self.slots[k]
        return (slot.context, slot.rule.column, slot.rule.check, slot.check_number, slot.rule.name)

    def _values(
        self, k: int, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str], rows: np.ndarray
    ) -> pl.Series | None:
        """The ``failure_case`` of slot ``k`` at ``rows`` of ``frame`` (None: its values cannot be rendered):
        the value as text (a row-level expression or a composite key: the values it reads, as JSON, from the
        batch's own values ``originals`` holds for the cast columns), redacted where classified."""
        rule, name = self.slots[k].rule, str(self.slots[k].rule.column)
        at = pl.Series(rows, dtype=pl.UInt32)  # Series[Series]: a gather without a plan (Series.gather plans one)
        try:
            if rule.op is Op.EXPRESSION or rule.key_columns:
                return self._json(rule.key_columns or tuple(df.columns), frame, originals, at)
            source = originals.get(name, name) if rule.op is Op.DTYPE else name
            text = _text(frame.get_column(source)[at])
            return _redacted(text) if name in self.redacted else text
        except (Exception, pl.exceptions.PanicException):  # a value that cannot be rendered is no reason to fail
            return None  # (polars panics on what it has not implemented, e.g. JSON of binary values)

    def _json(self, names: tuple[str, ...], frame: pl.DataFrame, originals: dict[str, str], at: pl.Series) -> pl.Series:
        """The batch's values of the columns ``names`` at the rows ``at`` as JSON objects (pandera renders a frame
        check's rows from Python values: a Float32 as the double it is), redacted where classified. Up to
        ``_PYTHON_ROWS`` rows (the worker's samples) are encoded in Python when their dtypes allow
        (:mod:`~streams.validation.pyrender`, byte for byte polars' encoding): polars' gather of every column and
        its query cost more CPU than twenty rows. Else the values are changed in eager operations and encoded as
        one struct (:func:`encoded_rows`)."""
        if not names:
            return pl.Series("failure_case", ["{}"] * len(at), dtype=pl.String)
        if len(at) <= _PYTHON_ROWS:  # a few rows (the worker's samples): encoded in Python, if their dtypes allow
            columns = [(n, frame.get_column(originals.get(n, n))[at], n in self.redacted) for n in names]
            if (texts := rows_json(columns)) is not None:
                return pl.Series("failure_case", texts, dtype=pl.String)
        small = frame[[originals.get(n, n) for n in names]][at]  # (the batch's own values of cast columns)
        return encoded_rows(small, names, self.redacted)


def encoded_rows(small: pl.DataFrame, names: tuple[str, ...], redacted: frozenset[str]) -> pl.Series:
    """The rows of ``small`` as JSON objects keyed by ``names`` (its columns, renamed) through polars' ``json_encode``:
    a Float32 as the double it is, binary values as hex text, the values of ``redacted`` columns redacted."""
    for i, (n, column) in enumerate(zip(names, small.get_columns(), strict=True)):
        shown = column.cast(pl.Float64) if column.dtype == pl.Float32 else column
        if has_binary(column.dtype):  # as a binary column's own cases show it (polars encodes no bytes as JSON)
            shown = column.to_frame().select(jsonable(pl.nth(0), column.dtype)).to_series()  # (a name may be `*`)
        shown = _redacted(shown) if n in redacted else shown
        if shown is not column:
            small.replace_column(i, shown.alias(column.name))
    small.columns = list(names)
    return small.to_struct("failure_case").struct.json_encode()


def _text(values: pl.Series) -> pl.Series:
    """``as_text`` of ``values``: a cast (no plan) but for the dtypes rendered otherwise (nested, binary, objects)."""
    dtype = values.dtype
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct)) or dtype in (pl.Object, pl.Binary):
        return values.to_frame("v").select(as_text(pl.col("v"), dtype)).to_series()
    return values.cast(pl.String)


def _redacted(text: pl.Series) -> pl.Series:
    """``redact`` of ``text`` (any dtype): ``[REDACTED]`` in place of every non-null value."""
    nulls = text.null_count()
    if nulls in (0, len(text)):  # (a `required` rule's cases: every value null)
        return pl.Series("failure_case", [None if nulls else REDACTED] * len(text), dtype=pl.String)
    return text.to_frame("v").select(redact(pl.col("v"))).to_series()
