"""Where the rows of each slice of a batch are, for the kernels of :mod:`streams.profiles.kernels`.

::

    at = Layout(ids, n)            # ids: int64 slice id per row, -1 for none
    at.sid                         # the slice id per row, n for none (a bin of its own when counting)
    buf, starts = at.pack(values)  # each slice's values, slice after slice: buf[starts[i]:starts[i+1]]

Reductions that count (``np.bincount`` over ``sid * width + value``) read the columns in place, in frame order;
reductions that sort take each slice's values out once (:meth:`Layout.pack`): as blocks of rows when every slice is
one block of the batch (a batch grouped by partition and window), else by one gather in slice order.

The large working arrays of a batch (a copy to sort, a key to count) are taken from a per-thread pool
(:func:`scratch`) and written over by the next field: allocating them afresh costs a page fault per 4 KB touched,
as much as the sort itself at 100,000 rows.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

__all__ = ["Layout", "scratch"]

_POOL_MAX = 1 << 24  # bytes kept per pooled array (and thread); larger arrays are allocated each time
_pool = threading.local()


def scratch(name: str, size: int, dtype: type[np.generic]) -> np.ndarray:
    """A 1-D array of ``size`` items, reused by the next call with the same ``name`` on this thread."""
    if size * np.dtype(dtype).itemsize > _POOL_MAX:
        return np.empty(size, dtype=dtype)
    arrays: dict[tuple[str, type[np.generic]], np.ndarray] = _pool.__dict__.setdefault("arrays", {})
    got = arrays.get((name, dtype))
    if got is None or len(got) < size:
        got = arrays[(name, dtype)] = np.empty(max(size, 1024), dtype=dtype)
    return got[:size]


class Layout:
    """The slices ``0 .. n-1`` of a batch: sizes, ids per row, and how to take each slice's values out."""

    __slots__ = ("_bases", "_order", "blocks", "identity", "n", "sid", "sizes", "starts")

    def __init__(self, ids: np.ndarray, n: int) -> None:
        self.n = n
        none = ids < 0
        self.sid: np.ndarray = np.where(none, n, ids) if none.any() else ids
        self.sizes: np.ndarray = np.bincount(self.sid, minlength=n + 1)[:n]
        self.starts: np.ndarray = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=self.starts[1:])
        self.blocks: list[tuple[int, int]] | None = None  # each slice one block of rows: its bounds in the frame
        self._order: np.ndarray | None = None  # else: the rows of slice 0, then of slice 1, ... (stable)
        self.identity = False  # the rows already slice after slice (every row in a slice, slices in order)
        self._bases: dict[tuple[int, int], np.ndarray] = {}
        sid = self.sid
        if len(sid) > 1 and np.count_nonzero(sid[1:] != sid[:-1]) > 2 * n + 1:
            return  # interleaved
        cut = np.flatnonzero(sid[1:] != sid[:-1]) + 1
        heads = np.concatenate((np.zeros(min(len(sid), 1), dtype=np.int64), cut))
        tails = np.append(cut, len(sid))[: len(heads)]
        runs = sid[heads]
        mine = runs < n
        if len(np.unique(runs[mine])) == int(np.count_nonzero(mine)):  # one block per slice
            self.blocks = [(0, 0)] * n
            for i, a, b in zip(runs[mine].tolist(), heads[mine].tolist(), tails[mine].tolist(), strict=True):
                self.blocks[i] = (a, b)
            ends = self.starts.tolist()
            self.identity = all(blk == (s, e) for blk, s, e in zip(self.blocks, ends, ends[1:], strict=False))

    @property
    def order(self) -> np.ndarray:
        """The rows of slice 0, then of slice 1, ... (each in frame order), for slices that are not blocks."""
        if self._order is None:
            sid, n = self.sid, self.n
            if n <= 16:
                rows = np.arange(len(sid))
                self._order = np.empty(int(self.starts[-1]), dtype=rows.dtype)
                for i, (a, b) in enumerate(itertools.pairwise(self.starts.tolist())):
                    np.compress(sid == i, rows, out=self._order[a:b])
            else:
                keep = np.flatnonzero(sid < n)
                self._order = keep[np.argsort(sid[keep], kind="stable")]
        return self._order

    def pack_into(self, values: np.ndarray, out: np.ndarray) -> None:
        """Each slice's values, slice after slice in frame order, written into ``out`` (``starts[-1]`` long)."""
        if self.blocks is None:
            np.take(values, self.order, out=out, mode="clip")  # (clip: unbuffered; the rows are in range)
        elif self.identity:
            out[:] = values[: len(out)]
        else:
            for (a, b), s in zip(self.blocks, self.starts.tolist(), strict=False):
                out[s : s + b - a] = values[a:b]

    def pack(self, values: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each slice's (valid) values, slice after slice in frame order, in a pooled array; the slices' bounds."""
        if valid is None:
            out = scratch("pack", int(self.starts[-1]), values.dtype.type)
            self.pack_into(values, out)
            return out, self.starts
        if self.blocks is None:
            held = valid[self.order]
            sizes = np.asarray([np.count_nonzero(held[a:b]) for a, b in itertools.pairwise(self.starts.tolist())])
            rows = self.order[held]
        else:
            parts = [np.flatnonzero(valid[a:b]) + a for a, b in self.blocks]
            rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            sizes = np.asarray([len(p) for p in parts], dtype=np.int64)
        starts = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])
        out = scratch("pack", len(rows), values.dtype.type)
        np.take(values, rows, out=out, mode="clip")
        return out, starts

    def keys(
        self, width: int, values: np.ndarray | None = None, low: int = 0, valid: np.ndarray | None = None
    ) -> np.ndarray:
        """``sid * width + values - low`` per row (``n * width`` where ``valid`` is false), in a pooled int64 array:
        the bin of each row's value in a bincount of ``n + 1`` slices (the last: rows in none) of ``width`` values.
        ``sid * width - low`` is kept per batch for the next field with the same ``width`` and ``low``."""
        base = self._bases.get((width, low))
        if base is None:
            base = self._bases[(width, low)] = self.sid * width
            if low:
                base -= low
        out = scratch("key", len(self.sid), np.int64)
        if values is None:
            out[:] = base
        else:
            np.add(base, values, out=out, casting="unsafe")  # (values within the width here)
        if valid is not None:
            np.copyto(out, self.n * width, where=~valid)
        return out
