"""Profiles of many slices of one batch in one pass: the per-window slices of stream time.

::

    parts = profile_slices(batch, spec, slice_ids, n)   # == [profile_frame(batch[slice_ids == i], spec) for i < n]

Rows with a negative slice id belong to no slice. Every slice gets the profile :func:`profile_frame` gives for
its rows alone, field for field and bit for bit: both are :func:`~streams.profiles.kernels.slice_fields`, which
reads each column once for all slices (one polars ``select`` hashes the text fields; no row of the frame is
gathered) and computes every statistic of a slice from the multiset of its values only.

Left per slice: the prediction part (:func:`~streams.profiles.prediction.profile_models`, one group-by per
slice, on the gathered prediction columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from streams.profiles.kernels import slice_fields, spec_id
from streams.profiles.prediction import profile_models
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.spec import ProfileSpec

__all__ = ["SliceProfiler", "profile_slices"]


@dataclass(frozen=True, slots=True)
class SliceProfiler:
    """Profiles by one spec: ``profiler(frame)`` one batch, ``profiler.slices(frame, ids, n)`` its slices at once."""

    spec: ProfileSpec

    def __call__(self, frame: pl.DataFrame) -> Profile:
        return profile_frame(frame, self.spec)

    def slices(self, frame: pl.DataFrame, slice_ids: np.ndarray, n: int) -> list[Profile]:
        return profile_slices(frame, self.spec, slice_ids, n)


def profile_slices(frame: pl.DataFrame, spec: ProfileSpec, slice_ids: np.ndarray, n: int) -> list[Profile]:
    """The profile of each slice ``0 .. n-1`` of ``frame`` (rows with ``slice_ids == i``, in frame order)."""
    ids = np.asarray(slice_ids, dtype=np.int64)
    if ids.shape != (frame.height,):
        raise ValueError(f"slice_ids has shape {ids.shape}, the frame {frame.height} rows")
    if ids.size and ids.max(initial=-1) >= n:
        raise ValueError(f"slice_ids has ids up to {int(ids.max())}, beyond the {n} slices asked for")
    ids = np.where(ids < 0, -1, ids)
    fields = slice_fields(frame, spec, ids, n)
    sizes = np.bincount(ids[ids >= 0], minlength=n).tolist()
    pred, names = spec.prediction, []
    if pred is not None:
        names = [c for c in dict.fromkeys((pred.score, pred.label, pred.model_version)) if c and c in frame.columns]
    out, sid = [], spec_id(spec)
    for i in range(n):
        models = {}
        if pred is not None and sizes[i]:
            models = profile_models(frame.select(names)[np.flatnonzero(ids == i)], pred)
        out.append(Profile(spec.contract, spec.schema, sid, sizes[i], fields[i], models))
    return out
