"""The per-field reductions of a batch, for every slice of it at once: numpy on the columns' buffers.

::

    per_slice = slice_fields(frame, spec, slice_ids, n)   # per_slice[i][name]: the FieldProfile of slice i

Row ``r`` belongs to slice ``slice_ids[r]`` (``-1``: to none). :func:`~streams.profiles.profile.profile_frame` is
the one-slice case, so a slice profiled among others and the same rows profiled alone are the same computation.
The frame is never gathered: one polars ``select`` hashes the text fields (polars' ``hash(seed=0)``, the hash of
the distinct-count sketch) and fills nulls; the rest reads the columns as numpy arrays. A slice whose rows are one
block of the batch (a batch grouped by partition and window) is read in place; interleaved slices are taken out
once per column (a numpy gather of numbers or hashes, never of text).

* **numeric**: per slice, the valid values (NaN is null) are taken out in slice order and sorted — the float
  fields of a slice together, one 2-D block sorted in one call (:func:`_numeric_block`), other numeric types
  (e.g. 128-bit integers and decimals) as float64, integers in their own type. The histogram is the sorted run
  searched at the reference edges (integers against the edges rounded down); ``min`` / ``max`` are its ends,
  ``below`` and the tail gaps come from its ends, ``mean`` and ``m2`` (two-pass, ``Σ (v - mean)²``) are pairwise
  sums over it, except that an integer slice within ``±2²⁰`` gets its mean, ``m2`` and tail gaps exactly (int64
  sums, one rounding: :mod:`streams.profiles.integers`). Every statistic is a
  function of the *multiset* of the slice's values (a zero's sign aside: ``-0.0`` reads ``0.0``), so it depends
  neither on the order of the rows nor on the other slices;
* **categorical**: the value hashes sorted and counted per slice, each hash named by the first row that has
  it (remembered across batches). The distinct-count sketch is the smallest of those hashes. Counting hashes is
  exact unless two distinct values of one field collide on the 64-bit hash (probability ``d² / 2⁶⁵`` for ``d``
  distinct values: ~2·10⁻¹⁵ at the cap of 256);
* **booleans**: counted per slice; **identifiers** (``cap = 0``): only the k smallest distinct hashes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from streams.profiles.fields import CategoricalProfile, FieldProfile, _cap, hash_strings
from streams.profiles.layout import Layout
from streams.profiles.numeric import INTS, absent_numeric, float_block, integer_field
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec
from streams.profiles.tables import HashTable, tables

__all__ = ["slice_fields", "spec_id"]

#: hash -> value, for the hashes seen (values recur from batch to batch); forgotten when it grows past this
_NAMES_MAX = 1 << 16
_names: dict[int, str] = {}
_U64_MAX = (1 << 64) - 1


def spec_id(spec: ProfileSpec) -> str:
    """``spec.binning_id`` (a sha256 of the whole spec, ~2 ms with 20 fields), remembered per spec object."""
    got = _spec_ids.get(id(spec))
    if got is None or got[0] is not spec:
        if len(_spec_ids) >= 64:
            _spec_ids.clear()
        got = _spec_ids[id(spec)] = (spec, spec.binning_id)
    return got[1]


_spec_ids: dict[int, tuple[ProfileSpec, str]] = {}


def slice_fields(frame: pl.DataFrame, spec: ProfileSpec, ids: np.ndarray, n: int) -> list[dict[str, FieldProfile]]:
    """The field profiles of slices ``0 .. n-1`` of ``frame`` (``ids``: int64, one per row, ``-1`` for none)."""
    at = Layout(ids, n)
    out: list[dict[str, FieldProfile]] = [{} for _ in range(n)]
    schema = frame.schema
    plan = _plan(spec, tuple((schema.get(f.name), _has_nulls(frame, schema, f.name)) for f in spec.fields))
    prepared = frame.select(plan.exprs) if plan.exprs else frame.clear()

    def read(step: _Step) -> tuple[np.ndarray, np.ndarray | None]:
        values = (prepared if step.prepared else frame).get_column(step.values).to_numpy()
        return values, None if step.valid is None else prepared.get_column(step.valid).to_numpy()

    if plan.block:  # the numbers float64 holds (every numeric type but the integers): one 2-D block
        with np.errstate(invalid="ignore", over="ignore"):  # infinite values: infinite or NaN moments and gaps
            per_block = float_block([s.field for s in plan.block], [read(s)[0] for s in plan.block], at)
        for step, per in zip(plan.block, per_block, strict=True):
            for i, fp in enumerate(per):
                out[i][step.field.name] = fp
    sizes = at.sizes.tolist()
    for step in plan.steps:
        f, kind = step.field, step.kind
        if kind == "absent":  # an absent column is all nulls
            per = absent_numeric(f, sizes) if f.kind is Kind.NUMERIC else _absent_categorical(f, spec.kmv_k, sizes)
        elif kind == "integer":
            assert step.dtype is not None
            per = integer_field(f, *read(step), step.dtype, at)
        elif kind == "boolean":
            per = _boolean(*read(step), f, spec.kmv_k, at)
        elif kind == "text":
            per = _text(frame.get_column(f.name), *read(step), f, spec.kmv_k, at)
        else:
            per = _identifiers(*read(step), f, spec.kmv_k, at)
        for i, fp in enumerate(per):
            out[i][f.name] = fp
    return out


def _has_nulls(frame: pl.DataFrame, schema: pl.Schema, name: str) -> bool:
    return name in schema and frame.get_column(name).null_count() > 0


@dataclass(frozen=True, slots=True)
class _Step:
    """How one field is profiled: its kernel, its column's type, where its values and non-null mask are read."""

    field: FieldSpec
    kind: str  # float, integer, boolean, text, identifier, absent
    dtype: pl.DataType | None
    values: str  # a column of the prepared frame (when ``prepared``) or of the batch
    prepared: bool
    valid: str | None  # a column of the prepared frame, when the field has nulls


@dataclass(frozen=True, slots=True)
class _Plan:
    exprs: list[pl.Expr]  # the prepared frame: nulls filled, masks, casts, hashes
    block: tuple[_Step, ...]  # the float fields
    steps: tuple[_Step, ...]  # the others


def _plan(spec: ProfileSpec, columns: tuple[tuple[pl.DataType | None, bool], ...]) -> _Plan:
    """The kernels and prepared columns of a spec on a batch's column types, built once per spec and types
    (building the expressions costs ~0.3 ms, comparing polars types a few µs each)."""
    key = (id(spec), columns)
    got = _plans.get(key)
    if got is None or got[0] is not spec:
        if len(_plans) >= 256:
            _plans.clear()
        exprs: list[pl.Expr] = []
        block: list[_Step] = []
        steps: list[_Step] = []
        for f, (dtype, nulls) in zip(spec.fields, columns, strict=True):
            made = _prepare(f, dtype, nulls) if dtype is not None else []
            exprs += made
            names = {e.meta.output_name() for e in made}
            v, ok = f"{f.name}\x1fv", f"{f.name}\x1fok"
            step = _Step(
                f, _kind(f, dtype), dtype, v if v in names else f.name, v in names, ok if ok in names else None
            )
            (block if step.kind == "float" else steps).append(step)
        got = _plans[key] = (spec, _Plan(exprs, tuple(block), tuple(steps)))
    return got[1]


_plans: dict[tuple[int, tuple[tuple[pl.DataType | None, bool], ...]], tuple[ProfileSpec, _Plan]] = {}


def _kind(f: FieldSpec, dtype: pl.DataType | None) -> str:
    if dtype is None:
        return "absent"
    if f.kind is Kind.NUMERIC:
        return "integer" if dtype in INTS else "float"
    if dtype == pl.Boolean:
        return "boolean"
    return "text" if f.cap > 0 else "identifier"


def _prepare(f: FieldSpec, dtype: pl.DataType, nulls: bool) -> list[pl.Expr]:
    c = pl.col(f.name)
    if f.kind is Kind.NUMERIC and dtype in INTS:
        return [c.fill_null(0).alias(f"{f.name}\x1fv"), c.is_not_null().alias(f"{f.name}\x1fok")] if nulls else []
    if f.kind is Kind.NUMERIC:  # null as NaN; anything but float64 cast to float64 (never raising on data)
        if dtype == pl.Float64 and not nulls:
            return []
        return [c.cast(pl.Float64, strict=False).fill_null(float("nan")).alias(f"{f.name}\x1fv")]
    out = [c.is_not_null().alias(f"{f.name}\x1fok")] if nulls else []
    if dtype == pl.Boolean:
        return [*out, c.fill_null(False).alias(f"{f.name}\x1fv")] if nulls else out
    return [*out, c.cast(pl.String).hash(seed=0).alias(f"{f.name}\x1fv")]


def _absent_categorical(f: FieldSpec, kmv_k: int, sizes: list[int]) -> list[FieldProfile]:
    return [CategoricalProfile(0, m, (), 0, (), f.cap, kmv_k) for m in sizes]


def _boolean(true: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, at: Layout) -> list[FieldProfile]:
    """Counted per slice: one bincount of ``slice · 2 + value``."""
    key = at.keys(2, true, 0, valid)
    table = np.bincount(key, minlength=2 * (at.n + 1))[: 2 * at.n].reshape(at.n, 2).tolist()
    out: list[FieldProfile] = []
    for (false, t), size in zip(table, at.sizes.tolist(), strict=True):
        count = false + t
        found = {k: m for k, m in (("false", false), ("true", t)) if m}
        pairs = _cap(found, f.cap)[0] if f.cap > 0 else ()
        sketch = tuple(sorted(hash_strings(sorted(found))))[:kmv_k]
        other = count - sum(m for _, m in pairs)
        out.append(CategoricalProfile(count, size - count, pairs, other, sketch, f.cap, kmv_k))
    return out


def _text(
    col: pl.Series, hashes: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, at: Layout
) -> list[FieldProfile]:
    """Exact counts per value (hash), named by their values: from the field's table of known values when every
    row holds one (:mod:`streams.profiles.tables`), else by sorting each slice's hashes (and learning the table)."""
    sizes = at.sizes.tolist()
    nulls = np.zeros(at.n, dtype=np.int64) if valid is None else np.bincount(at.sid[~valid], minlength=at.n + 1)[:-1]
    known = tables.get(f.name)
    if known is not None:
        counts = known.count(hashes, valid, nulls, at)
        if counts is not None:
            return _from_table(counts, known, nulls.tolist(), f, kmv_k, sizes)
    out, seen, names = _text_sorted(col, hashes, valid, f, kmv_k, at)
    if f.name not in tables:
        tables[f.name] = HashTable.of(seen, names)
    elif known is not None:  # (None: no table fits the field's values)
        tables[f.name] = known.learn(seen, names)
    return out


def _from_table(
    counts: np.ndarray, table: HashTable, nulls: list[int], f: FieldSpec, kmv_k: int, sizes: list[int]
) -> list[FieldProfile]:
    out: list[FieldProfile] = []
    names, hashes, by_name = table.names, table.hashes.tolist(), table.by_name
    for row, size, missing in zip(counts.tolist(), sizes, nulls, strict=True):
        if len(names) <= f.cap:  # every value kept: (value, count) by value
            pairs = tuple((names[j], c) for j in by_name if (c := row[j]))
        else:
            pairs, _ = _cap({names[j]: c for j, c in enumerate(row) if c}, f.cap)
        count = size - missing
        sketch = tuple(itertools.islice((h for h, c in zip(hashes, row, strict=True) if c), kmv_k))
        out.append(CategoricalProfile(count, missing, pairs, count - sum(c for _, c in pairs), sketch, f.cap, kmv_k))
    return out


def _text_sorted(
    col: pl.Series, hashes: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, at: Layout
) -> tuple[list[FieldProfile], np.ndarray, list[str]]:
    """Each slice's hashes sorted, the runs of every slice counted at once; also the batch's distinct hashes
    (ascending) and their values."""
    buf, starts = at.pack(hashes, valid)
    bounds = starts.tolist()
    for a, b in itertools.pairwise(bounds):
        if b - a > 1:
            buf[a:b].sort()
    m = len(buf)
    heads = np.zeros(0, dtype=np.int64)
    if m:
        new = np.empty(m, dtype=bool)
        new[0] = True
        np.not_equal(buf[1:], buf[:-1], out=new[1:])
        new[starts[:-1][starts[:-1] < m]] = True  # a slice's first value starts a run
        heads = np.flatnonzero(new)
    distinct = buf[heads]
    per = np.diff(np.append(heads, m)).tolist()
    cut = np.searchsorted(heads, starts).tolist()  # slice i's distinct values: distinct[cut[i]:cut[i + 1]]
    names = _name(col, hashes, distinct)
    out: list[FieldProfile] = []
    for i, size in enumerate(at.sizes.tolist()):
        a, b = cut[i], cut[i + 1]
        count = bounds[i + 1] - bounds[i]
        pairs, _ = _cap(dict(zip(names[a:b], per[a:b], strict=True)), f.cap)
        other = count - sum(k for _, k in pairs)
        sketch = tuple(distinct[a : min(b, a + kmv_k)].tolist())
        out.append(CategoricalProfile(count, size - count, pairs, other, sketch, f.cap, kmv_k))
    seen, first = np.unique(distinct, return_index=True)
    return out, seen, [names[j] for j in first.tolist()]


def _identifiers(
    hashes: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, at: Layout
) -> list[FieldProfile]:
    """Identifiers (``cap = 0``): no counts, the k smallest distinct hashes of each slice.

    A slice of ``m`` values takes as candidates its hashes up to ``2⁶⁴ · 4k / m`` (about ``4k`` of them when its
    values are distinct: one comparison per row for every slice at once); when fewer than ``k`` distinct hashes
    are below that bound, the slice's hashes are searched in full."""
    n, sid, sizes = at.n, at.sid, at.sizes.tolist()
    counts = sizes
    if valid is not None:
        counts = (at.sizes - np.bincount(sid[~valid], minlength=n + 1)[:n]).tolist()
    bound = [_U64_MAX if m <= 4 * kmv_k else (1 << 64) * 4 * kmv_k // m for m in counts]
    below = hashes <= np.asarray([*bound, 0], dtype=np.uint64)[sid]
    if valid is not None:
        below &= valid
    rows = np.flatnonzero(below)
    owner, candidates = sid[rows], hashes[rows]
    out: list[FieldProfile] = []
    for i, (count, size) in enumerate(zip(counts, sizes, strict=True)):
        mine = _counted(candidates[owner == i])[0]
        if len(mine) < kmv_k and bound[i] != _U64_MAX:  # too few below the bound: the whole slice
            held = sid == i if valid is None else (sid == i) & valid
            sketch = _smallest_distinct(hashes[held], kmv_k)
        else:
            sketch = tuple(mine[:kmv_k].tolist())
        out.append(CategoricalProfile(count, size - count, (), count, sketch, f.cap, kmv_k))
    return out


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, ascending, and how often each occurs (a sort: cheaper than np.unique's hashing)."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _name(col: pl.Series, hashes: np.ndarray, distinct: np.ndarray) -> list[str]:
    """The value of each hash: remembered, or read from the first row that has it."""
    keys = distinct.tolist()
    known = {h: v for h in keys if (v := _names.get(h)) is not None}  # (safe if another thread clears it)
    missing = [h for h in keys if h not in known]
    if missing:
        rows = np.flatnonzero(np.isin(hashes, np.asarray(missing, dtype=np.uint64)))
        found, first = np.unique(hashes[rows], return_index=True)
        new = dict(zip(found.tolist(), col.gather(rows[first]).cast(pl.String).to_list(), strict=True))
        if len(_names) + len(new) > _NAMES_MAX:
            _names.clear()
        _names.update(new)
        known |= new
    return [known[h] for h in keys]


def _smallest_distinct(hashes: np.ndarray, k: int) -> tuple[int, ...]:
    """The ``k`` smallest distinct values, ascending."""
    if len(hashes) > 4 * k:
        bound = np.partition(hashes, 4 * k - 1)[4 * k - 1]
        candidates = _counted(hashes[hashes <= bound])[0]
        if len(candidates) >= k:
            return tuple(candidates[:k].tolist())
    return tuple(_counted(hashes)[0][:k].tolist())
