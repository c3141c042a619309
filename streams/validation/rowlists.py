"""Per-row rule-name lists kept as a description until read: a report's ``violations`` and ``gating_violations``.

A failing batch's lists are the rows' bit codes (one small integer per row) and a table of the rule names
of every code; the ``List(String)`` column of every row is a gather of the table by the codes (~40–60 µs
at 10k rows). Most readers need only the failing rows' lists (a quarantined record's reasons), or none
(the worker's events), so the column is gathered on the first read of the field and kept;
:meth:`RuleLists.of` gathers only the lists of some rows.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import polars as pl

__all__ = ["RowsField", "RuleLists"]


class RuleLists:
    """The rule-name list of every row: ``table[codes]`` (``codes``: a numpy array of unsigned integers, one per
    row; ``table``: a ``List(String)`` Series named ``violations``), gathered once when first read."""

    __slots__ = ("_series", "codes", "table")

    def __init__(self, codes: np.ndarray, table: pl.Series) -> None:
        self.codes = codes
        self.table = table
        self._series: pl.Series | None = None

    @property
    def gathered(self) -> bool:
        """Every row's list has been gathered (:meth:`series`)."""
        return self._series is not None

    def series(self) -> pl.Series:
        """Every row's list (gathered on the first call, then kept)."""
        series = self._series
        if series is None:  # (Series[Series]: a gather without a plan; Series.gather plans one)
            series = self._series = self.table[pl.Series("code", self.codes)]
        return series

    def of(self, rows: Any) -> pl.Series:
        """The lists of ``rows`` (row numbers, in that order): ``series().gather(rows)``, without the others."""
        if self._series is not None:
            return self._series.gather(rows)
        return self.table[pl.Series("code", self.codes[np.asarray(rows, dtype=np.int64)])]

    def rows_by_name(self) -> dict[str, np.ndarray]:
        """Per rule named in the lists, the rows whose list names it (ascending, int64), from the codes."""
        sizes = self.table.list.len().to_numpy()
        bad = np.flatnonzero(sizes[self.codes] > 0)
        if not len(bad):
            return {}
        codes = self.codes[bad]
        order = np.argsort(codes, kind="stable")  # (ascending rows within a code)
        present, starts = np.unique(codes[order], return_index=True)
        parts: dict[str, list[np.ndarray]] = {}
        groups = np.split(bad[order].astype(np.int64), starts[1:])
        for names, rows in zip(self.table.gather(present).to_list(), groups, strict=True):
            for name in names:
                parts.setdefault(str(name), []).append(rows)
        return {name: np.sort(np.concatenate(p)) if len(p) > 1 else p[0] for name, p in parts.items()}

    def cut(self, rows: np.ndarray) -> RuleLists:
        """The lists of ``rows`` (renumbered from 0), not gathered."""
        return RuleLists(self.codes[rows], self.table)


class RowsField:
    """A report field of per-row lists: set from a Series, a :class:`RuleLists` or None (``optional``), read as
    the Series (a :class:`RuleLists` is gathered on the first read). :meth:`description` reads what was set."""

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> RowsField | None: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Any: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:  # the default: None when optional, else none (the field is required)
            if self.optional:
                return None
            raise AttributeError(self.slot[1:])
        value = obj.__dict__[self.slot]
        return value.series() if isinstance(value, RuleLists) else value

    def __set__(self, obj: object, value: pl.Series | RuleLists | None) -> None:
        obj.__dict__[self.slot] = value

    def description(self, obj: object) -> pl.Series | RuleLists | None:
        """What ``obj``'s field was set to (a :class:`RuleLists` not gathered)."""
        value: pl.Series | RuleLists | None = obj.__dict__[self.slot]
        return value
