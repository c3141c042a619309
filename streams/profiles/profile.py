"""A mergeable profile of a batch, a window or a reference: every field, plus per-model scores.

::

    spec = spec_for_schema(contract, contract.schema())     # or reference.spec
    part = profile_frame(batch, spec)                        # numpy reductions over the batch's columns
    total = merge_profiles([part_a, part_b, part_c])         # == profile_frame(concat of the batches)

Merge is associative and commutative; :func:`profile_frame` of a concatenation equals the merge
of the parts' profiles (see :mod:`streams.profiles.fields` for what is exact and what is rounded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from streams.errors import ProfileError
from streams.profiles.fields import CategoricalProfile, FieldProfile, NumericProfile, merge_fields
from streams.profiles.kernels import slice_fields, spec_id
from streams.profiles.prediction import ModelProfile, merge_models, profile_models
from streams.profiles.spec import Kind, ProfileSpec

__all__ = ["Profile", "empty_profile", "merge_profiles", "profile_frame"]


@dataclass(frozen=True)
class Profile:
    """Per-field partial profiles of ``rows`` records of one schema object of one contract version."""

    contract: str  # id@version
    schema: str
    spec_id: str  # ProfileSpec.binning_id: only profiles with the same id merge
    rows: int
    fields: Mapping[str, FieldProfile]
    models: Mapping[str, ModelProfile] = field(default_factory=dict)

    def merge(self, other: Profile) -> Profile:
        for attr, reason in (("contract", "contract"), ("schema", "schema"), ("spec_id", "binning")):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if mine != theirs:
                raise ProfileError(
                    f"Cannot merge a profile of {attr} {theirs!r} into one of {mine!r}: partials merge only when "
                    "computed for the same contract version, schema object and reference bins.",
                    reason=reason,
                )
        if self.fields.keys() != other.fields.keys():
            raise ProfileError("Cannot merge profiles of different field sets.", reason="binning")
        try:
            fields = {name: merge_fields(p, other.fields[name]) for name, p in self.fields.items()}
        except ValueError as exc:
            raise ProfileError(f"Cannot merge profiles: {exc}.", reason="binning") from exc
        return Profile(
            self.contract, self.schema, self.spec_id, self.rows + other.rows, fields,
            merge_models(self.models, other.models),
        )  # fmt: skip

    def numeric(self, name: str) -> NumericProfile:
        p = self.fields[name]
        if not isinstance(p, NumericProfile):
            raise TypeError(f"field {name!r} is profiled as categorical")
        return p

    def categorical(self, name: str) -> CategoricalProfile:
        p = self.fields[name]
        if not isinstance(p, CategoricalProfile):
            raise TypeError(f"field {name!r} is profiled as numeric")
        return p

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "schema": self.schema,
            "spec_id": self.spec_id,
            "rows": self.rows,
            "fields": {name: p.as_dict() for name, p in self.fields.items()},
            "models": {v: m.as_dict() for v, m in self.models.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        fields: dict[str, FieldProfile] = {}
        for name, p in d["fields"].items():
            kind = Kind(p["kind"])
            fields[name] = NumericProfile.from_dict(p) if kind is Kind.NUMERIC else CategoricalProfile.from_dict(p)
        models = {str(v): ModelProfile.from_dict(m) for v, m in d.get("models", {}).items()}
        return cls(str(d["contract"]), str(d["schema"]), str(d["spec_id"]), int(d["rows"]), fields, models)


def profile_frame(frame: pl.DataFrame, spec: ProfileSpec) -> Profile:
    """Profile one batch: the one-slice case of :func:`~streams.profiles.slices.profile_slices` (numpy reductions
    over the columns, see :mod:`streams.profiles.kernels`), plus one group-by for the models."""
    fields = slice_fields(frame, spec, np.zeros(frame.height, dtype=np.int64), 1)[0]
    models = profile_models(frame, spec.prediction) if spec.prediction is not None else {}
    return Profile(spec.contract, spec.schema, spec_id(spec), frame.height, fields, models)


def empty_profile(spec: ProfileSpec) -> Profile:
    """The identity of merge: the profile of no records."""
    fields: dict[str, FieldProfile] = {}
    for f in spec.fields:
        if f.kind is Kind.NUMERIC:
            hist = (0,) * (len(f.edges) + 1) if f.edges else ()
            fields[f.name] = NumericProfile(0, 0, None, None, 0.0, 0.0, hist, 0)
        else:
            fields[f.name] = CategoricalProfile(0, 0, (), 0, (), f.cap, spec.kmv_k)
    return Profile(spec.contract, spec.schema, spec_id(spec), 0, fields, {})


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """Merge any number of partials (at least one)."""
    it = iter(profiles)
    try:
        total = next(it)
    except StopIteration:
        raise ValueError("merge_profiles needs at least one profile") from None
    for p in it:
        total = total.merge(p)
    return total
