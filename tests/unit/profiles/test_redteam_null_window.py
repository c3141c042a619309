"""A field that turns all (or nearly all) null in a large window is drift on its null rate, not "insufficient data".

Found by the red-team pass: a field was judged only with at least ``min_count`` (30) non-null values in the
window, so a window of 2,000 records whose ``amount`` had become null in every one (the README's "a join starts
producing nulls") was ``insufficient_data``: no verdict. The null-rate check needs rows, not values: it is now
run whenever the window has ``min_count`` records of the field, and the distribution methods still wait for
values. The independent computation is the documented rule done by hand: |change| >= 0.05 and beyond 3.29
standard errors of a difference of two proportions.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from streams.profiles.drift import Verdict
from streams.profiles.profile import profile_frame
from tests.unit.profiles.drift_data import drift as run
from tests.unit.profiles.drift_data import sample, spec_from


def _flagged_by_hand(ref_nulls: int, ref_rows: int, cur_nulls: int, cur_rows: int) -> bool:
    change = cur_nulls / cur_rows - ref_nulls / ref_rows
    pooled = (ref_nulls + cur_nulls) / (ref_rows + cur_rows)
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref_rows + 1 / cur_rows))
    return abs(change) >= max(0.05, 3.29 * se)


def test_a_field_all_null_in_a_large_window_drifts_on_its_null_rate() -> None:
    ref = sample(20_000, np.random.default_rng(31))
    spec = spec_from(ref)
    ref_profile = profile_frame(ref, spec)
    for nulls in (2_000, 1_990):  # every value null; ten left (fewer than min_count)
        cur = sample(2_000, np.random.default_rng(32))
        amount = cur["amount"].to_numpy().copy()
        amount[:nulls] = np.nan
        cur = cur.with_columns(pl.Series("amount", amount))
        report = run(spec, ref_profile, cur)
        field = report.field("amount")
        ref_field = ref_profile.fields["amount"]
        expected = _flagged_by_hand(ref_field.nulls, ref.height, nulls, cur.height)
        assert expected
        assert field.verdict is Verdict.DRIFT, field
        assert field.metric("null_rate_change").drifted
        assert field.metric("null_rate_change").value == ref_field.nulls / -ref.height + nulls / cur.height
        assert report.field("x").verdict is Verdict.OK  # the other fields are judged as before
    small = sample(20, np.random.default_rng(34), null_rate=1.0)  # 20 records: fewer than min_count
    assert run(spec, ref_profile, small).field("amount").verdict is Verdict.INSUFFICIENT_DATA
