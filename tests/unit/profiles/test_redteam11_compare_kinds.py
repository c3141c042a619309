"""Red team 11: ``compare`` of profiles whose field kinds differ must refuse, not leave the field out of the report.

A field numeric in the reference and categorical in the current profile matched neither branch of ``compare``: it
was silently missing from the report (no verdict, so no drift), and the family bookkeeping then read the previous
field's result again. A field missing from the current profile raised a bare ``KeyError``."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streams.errors import ProfileError
from streams.profiles.drift import compare
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec


def _profiles() -> tuple[Profile, Profile]:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"x": rng.normal(0, 1, 500), "c": rng.choice(["a", "b"], 500)})
    ref_spec = ProfileSpec(
        "urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, (-4.0, 0.0, 4.0)), FieldSpec("c", Kind.CATEGORICAL))
    )
    cur_spec = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.CATEGORICAL), FieldSpec("c", Kind.CATEGORICAL)))
    return profile_frame(frame, ref_spec), profile_frame(frame.with_columns(pl.col("x").cast(pl.String)), cur_spec)


def test_a_field_of_another_kind_in_the_current_profile_is_refused() -> None:
    reference, current = _profiles()
    with pytest.raises(ProfileError, match=r"Field 'x' is numeric in the reference but profiled as another kind") as e:
        compare(reference, current, edges={"x": (-4.0, 0.0, 4.0)})
    assert e.value.reason == "binning"


def test_a_field_missing_from_the_current_profile_is_refused() -> None:
    reference, _ = _profiles()
    fields = {k: v for k, v in reference.fields.items() if k != "c"}
    partial = Profile(reference.contract, reference.schema, reference.spec_id, reference.rows, fields)
    with pytest.raises(ProfileError, match=r"Field 'c' is categorical in the reference but not profiled"):
        compare(reference, partial, edges={"x": (-4.0, 0.0, 4.0)})
