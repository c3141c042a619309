"""Failure cases described when a batch is validated, rendered when they are read.

Rendering a pandera-shaped failure case per failing row (the value as text, a row-level expression's
whole row as JSON) is most of the cost of a failing batch, and the worker reads few of them: the first
``sample_size`` cases of each failing rule for its events. A :class:`FailureCases` is the description of
a report's failure cases: parts in order, each either a rendered frame (summary cases, the decoder's
wrong-typed values) or the failing rows of a validation (:class:`RowSource`: the masks and what renders
them), optionally cut to some rows (a partition's, renumbered from 0) and without some rules' rows.
:meth:`FailureCases.frame` renders the whole frame once (cached; safe across threads: reports are built
in a worker thread and read on the event loop); :meth:`FailureCases.of` renders only the first cases of
one rule. Both equal what rendering everything up front gives.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

#: The columns of ``ValidationReport.failure_cases``: pandera's layout plus ``rule``.
FAILURE_CASE_SCHEMA = pl.Schema(
    {
        "failure_case": pl.String,
        "schema_context": pl.String,
        "column": pl.String,
        "check": pl.String,
        "check_number": pl.Int32,
        "index": pl.Int32,
        "rule": pl.String,
    }
)

_NO_CASES = pl.DataFrame(schema=FAILURE_CASE_SCHEMA)


def empty_failure_cases() -> pl.DataFrame:
    """A failure-case frame with no rows and the documented columns."""
    return _NO_CASES.clear()


#: The constant columns of a rule's failure cases, in the order of ``constants_table``'s rows.
_CONSTANTS = pl.Schema(
    {"schema_context": pl.String, "column": pl.String, "check": pl.String, "check_number": pl.Int32, "rule": pl.String}
)


_TABLES: dict[tuple[tuple[Any, ...], ...], pl.DataFrame] = {}  # the constants of the failing rules of recent batches
_TABLES_SIZE = 256
_TABLES_LOCK = threading.Lock()
_REPEATED: dict[tuple[Any, ...], list[pl.Series]] = {}  # the constant columns of recent samples (listed_cases)


def constants_table(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """The table of the rules' constant columns (``schema_context``, ``column``, ``check``, ``check_number``,
    ``rule``), one row per rule; kept per list of rules (batches of a stream tend to fail the same rules), at
    most ``_TABLES_SIZE`` of them. A rule's cases gather its row."""
    key = tuple(rows)
    table = _TABLES.get(key)
    if table is None:
        table = pl.DataFrame(rows, schema=_CONSTANTS, orient="row")
        with _TABLES_LOCK:  # reports are read on the event loop while the next batch is validated in a thread
            if len(_TABLES) >= _TABLES_SIZE:
                _TABLES.pop(next(iter(_TABLES)), None)
            _TABLES[key] = table
    return table


def listed_cases(
    texts: list[str | None] | pl.Series, rules: list[tuple[Any, ...]], rows: list[np.ndarray], *, keep: bool = True
) -> pl.DataFrame:
    """The failure-case frame of the cases ``texts`` (``failure_case``) of rules whose constants are ``rules``
    (``constants_table``'s rows), ``rows[j]`` those of rule ``j``. With ``keep``, the constant columns are kept per
    list of rules and counts of cases (a worker's samples: the same rules, twenty cases each); building a Series
    costs ~10 µs."""
    key = (tuple(rules), tuple(len(at) for at in rows))
    constants = _REPEATED.get(key) if keep else None
    if constants is None:
        at = pl.Series(np.repeat(np.arange(len(rules), dtype=np.uint32), key[1]))
        constants = [column[at] for column in constants_table(rules).get_columns()]  # (Series[Series]: no plan)
        if keep:
            with _TABLES_LOCK:
                if len(_REPEATED) >= _TABLES_SIZE:
                    _REPEATED.pop(next(iter(_REPEATED)), None)
                _REPEATED[key] = constants
    context, column, check, number, rule = constants
    index = pl.Series("index", np.concatenate(rows), dtype=pl.Int32)
    value = (
        texts.alias("failure_case")
        if isinstance(texts, pl.Series)
        else pl.Series("failure_case", texts, dtype=pl.String)
    )
    return pl.DataFrame([value, context, column, check, number, index, rule])


def concat_cases(summary: list[tuple[Any, ...]], rows: pl.DataFrame | None = None) -> pl.DataFrame:
    """The failure-case frame: ``summary`` cases (tuples in ``FAILURE_CASE_SCHEMA`` order)
    first, then the per-row cases ``rows``."""
    head = pl.DataFrame(summary, schema=FAILURE_CASE_SCHEMA, orient="row") if summary else None
    if rows is None or rows.height == 0:
        return head if head is not None else empty_failure_cases()
    return rows if head is None else pl.concat([head, rows], how="vertical")


class RowSource(Protocol):
    """The per-row failure cases of one validated batch, rendered on demand (one spec per failing rule)."""

    rules: tuple[str, ...]  # per spec, in the order of the rendered frame: the rule's name

    def frame(self) -> pl.DataFrame:
        """Every case, spec by spec, in row order (``index``: the batch's row numbers); cached."""
        ...

    def cached(self) -> pl.DataFrame | None:
        """The frame if it was rendered already, else None."""
        ...

    def failing(self, spec: int) -> np.ndarray:
        """The rows (ascending) failing spec ``spec``."""
        ...

    def failing_all(self, limit: int | None = None) -> list[np.ndarray]:
        """``failing(spec)`` of every spec, in spec order; only the first ``limit`` rows of each when given."""
        ...

    def render(self, rows: dict[int, np.ndarray]) -> pl.DataFrame:
        """The cases of each spec ``j`` of ``rows`` at ``rows[j]`` (some of its failing rows, ascending), spec
        by spec, ``index`` the rows; a spec whose values cannot be rendered is left out (as in the frame)."""
        ...

    def records(self, rows: dict[int, np.ndarray]) -> dict[str, list[dict[str, Any]]]:
        """``render(rows)`` as ``to_dicts()`` gives it, per rule (no frame built for a few rows per spec)."""
        ...


class BatchRows:
    """The per-row failure cases of one validated batch, described (a :class:`RowSource`): rendered
    whole on the first read of the frame (:meth:`~streams.validation.failures.Reporter.row_cases`,
    once: a lock), or a few rows of some rules (:meth:`render`). ``failing`` holds, per spec, the
    rule's failure mask (a numpy Boolean array) and its slot."""

    def __init__(
        self, reporter: Any, df: pl.DataFrame, frame: pl.DataFrame, originals: dict[str, str],
        failing: list[tuple[np.ndarray, int]],
    ) -> None:  # fmt: skip
        self._args = (reporter, df, frame, originals, failing)
        self.rules = tuple(reporter.slots[k].rule.name for _, k in failing)
        self._frame: pl.DataFrame | None = None
        self._lock = threading.Lock()

    def frame(self) -> pl.DataFrame:
        with self._lock:
            if self._frame is None:
                reporter, df, frame, originals, failing = self._args
                specs = [(k, np.flatnonzero(mask)) for mask, k in failing]
                self._frame = reporter.row_cases(df, frame, originals, specs)
            return self._frame

    def cached(self) -> pl.DataFrame | None:
        return self._frame

    def failing(self, spec: int) -> np.ndarray:
        return np.flatnonzero(self._args[4][spec][0])

    def failing_all(self, limit: int | None = None) -> list[np.ndarray]:
        """The failing rows of every spec, in spec order (the first ``limit`` of each when given: read from the
        head of the mask, a window doubled until it holds them, not over the whole batch)."""
        return [_true_rows(mask, limit) for mask, _ in self._args[4]]

    def render(self, rows: dict[int, np.ndarray]) -> pl.DataFrame:
        """The cases of each spec ``j`` at ``rows[j]``, rendered over those rows only (values render by dtype, not
        by value: these rows render exactly when all of the spec's rows do)."""
        reporter, df, frame, originals, failing = self._args
        return reporter.row_cases(df, frame, originals, [(failing[j][1], at) for j, at in rows.items()])

    def records(self, rows: dict[int, np.ndarray]) -> dict[str, list[dict[str, Any]]]:
        reporter, df, frame, originals, failing = self._args
        return reporter.row_records(df, frame, originals, [(failing[j][1], at) for j, at in rows.items()])


def _true_rows(mask: np.ndarray, limit: int | None = None) -> np.ndarray:
    """The rows (ascending) where ``mask`` is True, the first ``limit`` of them when given: only a head of the
    mask, doubled until it holds ``limit`` rows (the first cases of a rule failing 1% of 100k rows are in its
    first thousands); a mask of at most ``_WHOLE`` rows is searched in its head, then whole (two numpy calls: a rule
    failing a tenth of 10k rows has its first cases in its first thousand, and ``flatnonzero`` costs per row found)."""
    if limit is None:
        return np.flatnonzero(mask)
    window = max(1024, 64 * limit)
    if len(mask) <= _WHOLE:
        first = np.flatnonzero(mask[:window]) if len(mask) > window else None
        return first[:limit] if first is not None and len(first) >= limit else np.flatnonzero(mask)[:limit]
    first = np.flatnonzero(mask[:window])
    if len(first) >= limit or window >= len(mask):  # (most masks: their first window holds the rows)
        return first[:limit]
    found: list[np.ndarray] = [first]
    start, window, got = window, 2 * window, len(first)
    while start < len(mask) and got < limit:
        part = np.flatnonzero(mask[start : start + window]) + start
        found.append(part)
        got += len(part)
        start, window = start + window, 2 * window
    rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    return rows[:limit]


_WHOLE = 1 << 16  # rows up to which a mask is searched in one window, then whole: more windows cost more in Python


def _with_index(cases: pl.DataFrame, index: np.ndarray) -> pl.DataFrame:
    """``cases`` with the column ``index`` replaced by ``index``."""
    column = pl.Series("index", index, dtype=pl.Int32)
    return pl.DataFrame([column if c.name == "index" else c for c in cases.get_columns()])


@dataclass(frozen=True)
class _Rows:
    """The cases of ``source``, cut to the rows ``keep`` (row i of the cut is ``keep[i]``; None: every row),
    without the rows ``drops`` of some rules (``(rule, rows of the source)``)."""

    source: RowSource
    keep: np.ndarray | None = None
    drops: tuple[tuple[str, np.ndarray], ...] = ()

    def frame(self) -> pl.DataFrame:
        cases = self.source.frame()
        if self.drops:
            drop = pl.lit(False)
            for rule, rows in self.drops:
                drop = drop | (
                    (pl.col("rule") == rule) & pl.col("index").is_in(pl.Series(rows, dtype=pl.Int32).implode())
                )
            cases = cases.filter(~drop)
        return cases if self.keep is None else _cut(cases, self.keep)

    def heads(self, n: int) -> pl.DataFrame:
        """The first ``n`` cases of every spec, spec by spec (rendering only those when the frame is not)."""
        if self.source.cached() is not None:  # rendered already: read it
            return self.frame().filter(pl.int_range(pl.len()).over("rule") < n)
        rows = {}
        limit = n if self.keep is None and not self.drops else None  # else cut first, then take the head
        for spec, (rule, at) in enumerate(zip(self.source.rules, self.source.failing_all(limit), strict=True)):
            if self.keep is not None:
                at = at[np.isin(at, self.keep)]
            for name, dropped in self.drops:
                if name == rule:
                    at = at[~np.isin(at, dropped)]
            rows[spec] = at[:n]
        got = self.source.render(rows)
        if self.keep is not None and got.height:
            got = _with_index(got, _positions(self.keep, got.get_column("index").to_numpy()))
        return got

    def listable(self) -> bool:
        """Whether :meth:`head_records` applies: the rows of a batch not cut, without dropped rows, not rendered."""
        return self.keep is None and not self.drops and self.source.cached() is None

    def head_records(self, n: int) -> dict[str, list[dict[str, Any]]]:
        """:meth:`heads` as ``to_dicts()`` gives each rule's cases, listed without a frame (:meth:`listable` only)."""
        return self.source.records(dict(enumerate(self.source.failing_all(n))))

    def cut(self, rows: np.ndarray) -> _Rows:
        keep = rows if self.keep is None else self.keep[rows]
        return _Rows(self.source, np.asarray(keep, dtype=np.int64), self.drops)

    def without(self, drops: dict[str, np.ndarray]) -> _Rows:
        added = tuple((rule, rows if self.keep is None else self.keep[rows]) for rule, rows in drops.items())
        return _Rows(self.source, self.keep, self.drops + added)


def by_rule(cases: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """``cases.partition_by("rule", as_dict=True, maintain_order=True)`` without the cases of no rule, keyed by the
    rule's name: slices of each run of one rule (cases come spec by spec), concatenated when a rule comes back.
    ``partition_by`` as a dict selects its key once per part: a polars call per failing rule."""
    names = cases.get_column("rule").to_list()
    runs: dict[str, list[pl.DataFrame]] = {}
    start = 0
    for end in range(1, len(names) + 1):
        if end == len(names) or names[end] != names[start]:
            if names[start] is not None:
                runs.setdefault(names[start], []).append(cases.slice(start, end - start))
            start = end
    return {rule: parts[0] if len(parts) == 1 else pl.concat(parts) for rule, parts in runs.items()}


def _positions(keep: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The position in ``keep`` of each of ``rows`` (all in ``keep``)."""
    order = np.argsort(keep, kind="stable")
    return order[np.searchsorted(keep, rows, sorter=order)]


def _cut(cases: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The cases of rows ``rows`` (renumbered: row ``rows[i]`` becomes ``i``); cases without a row are dropped."""
    renumber = pl.Series(np.arange(len(rows), dtype=np.int32))
    taken = pl.Series(rows.astype(np.int32))
    hit = cases.get_column("index").is_in(taken.implode()).fill_null(False)
    return cases.filter(hit).with_columns(pl.col("index").replace_strict(taken, renumber, return_dtype=pl.Int32))


_Part = pl.DataFrame | _Rows


class FailureCases:
    """A report's failure cases: parts (rendered frames, or the failing rows of a validation) in order."""

    __slots__ = ("_frame", "_heads", "_lock", "_parts", "_records")

    def __init__(self, parts: tuple[_Part, ...] = ()) -> None:
        self._parts = parts
        self._frame: pl.DataFrame | None = parts[0] if len(parts) == 1 and isinstance(parts[0], pl.DataFrame) else None
        self._heads: dict[tuple[int, int], dict[str, pl.DataFrame]] = {}  # (part, n) -> the first n cases of each rule
        self._records: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = {}  # (part, n) -> _heads as dicts
        self._lock = threading.Lock()

    @classmethod
    def rendered(cls, frame: pl.DataFrame) -> FailureCases:
        """The cases ``frame``, rendered already (read as it is)."""
        return cls((frame,))

    @classmethod
    def of_batch(cls, summary: pl.DataFrame | None, rows: RowSource | None) -> FailureCases:
        """The summary cases (rendered) first, then the per-row cases of ``rows`` (rendered when read)."""
        parts: list[_Part] = [summary] if summary is not None and summary.height else []
        if rows is not None and rows.rules:
            parts.append(_Rows(rows))
        return cls(tuple(parts) if parts else (empty_failure_cases(),))

    def frame(self) -> pl.DataFrame:
        """The pandera-shaped failure-case frame, rendered on the first call (once, whichever thread asks)."""
        frame = self._frame
        if frame is not None:
            return frame
        with self._lock:
            if self._frame is None:
                frames = [p if isinstance(p, pl.DataFrame) else p.frame() for p in self._parts]
                self._frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
            return self._frame

    def of(self, rule: str, n: int) -> pl.DataFrame:
        """The first ``n`` cases of ``rule`` (``frame().filter(rule == rule).head(n)``), rendering only those."""
        if self._frame is not None:
            frame = self._frame
            return frame.filter(pl.col("rule") == rule).head(max(n, 0)) if "rule" in frame.columns else frame.clear()
        parts, left = [], max(n, 0)
        for i, part in enumerate(self._parts):
            if left <= 0:
                break
            mine = self._heads_of(i, part, left).get(rule)
            got = empty_failure_cases() if mine is None else mine.head(left)
            if got.height:
                parts.append(got)
                left -= got.height
        if not parts:
            first = self._parts[0] if self._parts else empty_failure_cases()
            return first.clear() if isinstance(first, pl.DataFrame) else empty_failure_cases()
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")

    def records(self, rule: str, n: int) -> list[dict[str, Any]]:
        """``of(rule, n).to_dicts()``: the first ``n`` cases of ``rule`` as dicts, listed without building a frame
        when they are the failing rows of a validation not rendered yet (a worker's event samples)."""
        if self._frame is not None:
            return self.of(rule, n).to_dicts()
        listed: list[dict[str, Any]] = []
        left = max(n, 0)
        for i, part in enumerate(self._parts):
            if left <= 0:
                break
            if isinstance(part, pl.DataFrame) or not part.listable():  # (as `of` reads them, then as dicts)
                mine = self._heads_of(i, part, left).get(rule)
                got = [] if mine is None else mine.head(left).to_dicts()
            else:
                got = self._records_of(i, part, left).get(rule, [])[:left]
            listed += got
            left -= len(got)
        return listed

    def _records_of(self, i: int, part: _Rows, n: int) -> dict[str, list[dict[str, Any]]]:
        """The first ``n`` cases of each rule of the rows part ``i`` as dicts, for every rule on the first call."""
        got = self._records.get((i, n))
        if got is None:
            with self._lock:
                got = self._records.get((i, n))
                if got is None:
                    got = self._records[(i, n)] = part.head_records(n)
        return got

    def _heads_of(self, i: int, part: _Part, n: int) -> dict[str, pl.DataFrame]:
        """The first ``n`` cases of each rule of part ``i`` (rule -> cases; a rendered part: all of them), rendered
        for every rule on the first call (the worker samples every failing rule: one rendering of them all)."""
        if isinstance(part, pl.DataFrame):
            n = 0  # every case, whatever n
        heads = self._heads.get((i, n))
        if heads is None:
            with self._lock:
                heads = self._heads.get((i, n))
                if heads is None:
                    cases = part if isinstance(part, pl.DataFrame) else part.heads(n)
                    if "rule" not in cases.columns:
                        cases = cases.clear().with_columns(pl.lit(None, dtype=pl.String).alias("rule"))
                    heads = self._heads[(i, n)] = by_rule(cases)
        return heads

    def cut(self, rows: np.ndarray) -> FailureCases:
        """The cases of the rows ``rows`` (renumbered from 0), after every case without a row, nothing rendered."""
        if self._frame is not None and all(isinstance(p, pl.DataFrame) for p in self._parts):
            return FailureCases.rendered(_split(self._frame, rows))
        heads: list[_Part] = []
        tails: list[_Part] = []
        for part in self._parts:
            if isinstance(part, pl.DataFrame) and part.get_column("index").null_count() == part.height:
                heads.append(part)  # no case of a row
            elif isinstance(part, pl.DataFrame):
                heads.append(part.filter(part.get_column("index").is_null()))
                tails.append(_cut(part, rows))
            else:
                tails.append(part.cut(rows))
        return FailureCases((*heads, *tails))

    def without(self, drops: dict[str, np.ndarray]) -> FailureCases:
        """The cases without those of rule ``r`` at rows ``drops[r]`` (also without the row-less cases of those
        rules: the filter ``~(rule == r & index in rows)`` drops a null index)."""
        if not drops:
            return self
        drop = pl.lit(False)
        for rule, rows in drops.items():
            drop = drop | ((pl.col("rule") == rule) & pl.col("index").cast(pl.UInt32).is_in(pl.Series(rows).implode()))
        parts = tuple(p.filter(~drop) if isinstance(p, pl.DataFrame) else p.without(drops) for p in self._parts)
        return FailureCases(parts)

    def then(self, frame: pl.DataFrame) -> FailureCases:
        """These cases, then the rendered cases ``frame``."""
        return FailureCases((*self._parts, frame))


def _split(cases: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The partition split of a rendered frame: the cases without a row, then those of ``rows`` renumbered."""
    if cases.get_column("index").null_count() == cases.height:  # no case of a row (a clean poll: none at all)
        return cases
    return pl.concat([cases.filter(cases.get_column("index").is_null()), _cut(cases, rows)], how="vertical")
