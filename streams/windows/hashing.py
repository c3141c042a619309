"""Stable 64-bit hashes of column values, vectorised in numpy (the same on every version and machine).

Uniqueness state and duplicate counts outlive a process (they are checkpointed to
Kafka and restored by another worker, possibly on another polars version), so they
cannot use ``polars.Series.hash``, which is only stable within one polars version.

* Integers, booleans, dates, datetimes and durations: their 64-bit value through the
  splitmix64 finaliser, a **bijection** of 64-bit words: distinct values never collide.
* Floats: the IEEE-754 bits (``-0.0`` taken as ``0.0``, every NaN as one NaN), then the same.
* Strings and binary values: their UTF-8 bytes, with the length, folded 8 bytes at a
  time through the finaliser (the state after each word is a bijection of the word).
  Distinct values collide with probability about 2^-64 per pair: with ``n`` values the
  chance of any collision is about ``n^2 / 2^65`` (2.7e-6 for 10 million values), and a
  lookup against ``n`` stored values is a false match with probability ``n / 2^64``
  (5.4e-13 for 10 million). It is not a cryptographic hash: a producer who wants to
  can craft colliding keys.
* Anything else (lists, structs): its JSON text, as a string.

Nulls get no hash: the mask says which rows are null.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = ["key_hash", "key_of", "mix64", "stable_hash"]

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SEED_TEXT = np.uint64(0x5851F42D4C957F2D)


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser over uint64 (a bijection; wraps modulo 2^64)."""
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _C1
        z ^= z >> np.uint64(27)
        z *= _C2
        z ^= z >> np.uint64(31)
    return z


def stable_hash(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, nulls)``: a stable uint64 per row (0 where null) and the null mask."""
    s = series
    dtype = s.dtype
    nulls = s.is_null().to_numpy()
    if dtype.is_float():
        values = s.cast(pl.Float64).fill_null(0.0).to_numpy().astype(np.float64, copy=True)
        values[values == 0.0] = 0.0  # -0.0 is 0.0
        values[np.isnan(values)] = np.nan
        words = values.view(np.uint64)
    elif dtype.is_integer() or dtype == pl.Boolean or dtype.is_temporal():
        physical = s.to_physical() if dtype.is_temporal() else s
        if dtype == pl.UInt64:
            words = physical.fill_null(0).to_numpy().astype(np.uint64)
        else:
            words = physical.cast(pl.Int64).fill_null(0).to_numpy().astype(np.int64).view(np.uint64)
    elif dtype in (pl.String, pl.Categorical, pl.Binary) or isinstance(dtype, pl.Enum):
        hashes = _hash_bytes(s.cast(pl.String) if dtype != pl.Binary else s)
        hashes[nulls] = 0
        return hashes, nulls
    else:
        text = pl.DataFrame({"v": s}).select(pl.struct("v").struct.json_encode()).to_series()
        hashes = _hash_bytes(text)
        hashes[nulls] = 0
        return hashes, nulls
    out = mix64(words)
    out[nulls] = 0
    return out, nulls


def _hash_bytes(s: pl.Series) -> np.ndarray:
    """The text/binary hash of every value (nulls hash like the empty value; the caller masks them)."""
    arr = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    if n and int(lengths.min()) == int(lengths.max()):  # one length (ids, UUIDs): a matrix, no sorting
        return _hash_fixed(data[int(starts[0]) : int(starts[0]) + n * int(lengths[0])], n, int(lengths[0]))
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    # every 8-byte little-endian word at every byte position (an unaligned strided view, no copy)
    at = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    with np.errstate(over="ignore"):
        h = mix64(lengths.astype(np.uint64) ^ _SEED_TEXT)
        words = (lengths + 7) // 8
        order = np.argsort(-words, kind="stable")  # longest first: round k touches a prefix
        sorted_words = words[order]
        for k in range(int(sorted_words[0])):
            active = order[: int(np.searchsorted(-sorted_words, -k, side="left"))]
            word = at[starts[active] + 8 * k].astype(np.uint64)
            left = lengths[active] - 8 * k  # bytes of the value from this word on (>= 1)
            short = left < 8
            if short.any():  # clear the bytes beyond the value
                keep = (np.uint64(1) << (left[short].astype(np.uint64) * np.uint64(8))) - np.uint64(1)
                word[short] &= keep
            h[active] = mix64(h[active] ^ word) + _GOLDEN
        return mix64(h)


def _hash_fixed(data: np.ndarray, n: int, length: int) -> np.ndarray:
    """:func:`_hash_bytes` of ``n`` values of ``length`` bytes each, laid end to end in ``data`` (the same hashes)."""
    words = (length + 7) // 8
    matrix = np.zeros((n, max(words, 1) * 8), dtype=np.uint8)
    if length:
        matrix[:, :length] = data.reshape(n, length)
    columns = matrix.view("<u8")
    with np.errstate(over="ignore"):
        h = mix64(np.full(n, length, dtype=np.uint64) ^ _SEED_TEXT)
        for k in range(words):
            h = mix64(h ^ columns[:, k].astype(np.uint64)) + _GOLDEN
        return mix64(h)


def key_of(rule: object) -> tuple[str, ...]:
    """The columns of a uniqueness rule's key: its composite key, else its column."""
    names = tuple(getattr(rule, "key_columns", ()) or ())
    column = getattr(rule, "column", None)
    return names or ((str(column),) if column is not None else ())


def _signless_zero(column: str, dtype: pl.DataType) -> pl.Expr:
    """``-0.0`` as ``0.0`` (equal for the engine, written differently in JSON)."""
    return pl.when(pl.col(column) == 0).then(pl.lit(0.0, dtype)).otherwise(pl.col(column)).alias(column)


def key_hash(frame: pl.DataFrame, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, nulls)`` of a key over ``frame``: one column, or a composite key (as JSON text of its
    parts, ``-0.0`` written as ``0.0`` and non-finite floats told apart; a key with a null part is null: never a
    duplicate, never claimed)."""
    if len(columns) == 1:
        return stable_hash(frame.get_column(columns[0]))
    floats = [c for c in columns if frame.schema[c].is_float()]
    parts = [_signless_zero(c, frame.schema[c]) if c in floats else pl.col(c) for c in columns]
    key = frame.select(pl.struct(*parts).alias("k")).to_series()
    hashes, _ = stable_hash(key)
    for i, c in enumerate(columns):  # JSON writes inf, -inf and NaN as null: tell them apart as the engine does
        if c in floats:
            v = frame.get_column(c).cast(pl.Float64).fill_null(0.0).to_numpy()
            kind = np.select([np.isnan(v), v == np.inf, v == -np.inf], [1, 2, 3], 0).astype(np.uint64)
            odd = np.flatnonzero(kind)
            if len(odd):
                with np.errstate(over="ignore"):
                    tag = mix64(kind[odd] * np.uint64(len(columns)) + np.uint64(i) + _SEED_TEXT)
                    hashes[odd] = mix64(hashes[odd] ^ tag) + _GOLDEN
    nulls = frame.select(pl.any_horizontal(pl.col(c).is_null() for c in columns)).to_series().to_numpy()
    hashes[nulls] = 0
    return hashes, np.asarray(nulls, dtype=bool)
