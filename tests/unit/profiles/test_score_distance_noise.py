"""The score-distribution distance of a model version is judged on 10 bins of ~equal reference mass, as numeric
fields are: on the 100 fine score bins two samples of one distribution are ~sqrt(99/8 (1/n + 1/m)) apart, above
the 0.1 threshold for any window of just over 1,000 predictions (87 of 100 clean windows flagged)."""

from __future__ import annotations

import numpy as np
import polars as pl

from streams.profiles.prediction import compare_models, profile_models
from streams.profiles.spec import PredictionSpec

SPEC = PredictionSpec(score="s", model_version="v")


def _profile(scores: np.ndarray) -> dict:  # type: ignore[type-arg]
    return profile_models(pl.DataFrame({"s": scores, "v": ["A"] * len(scores)}), SPEC)


def test_clean_windows_just_above_the_large_sample_size_are_not_flagged_by_the_score_distance() -> None:
    rng = np.random.default_rng(42)
    reference = _profile(rng.beta(5, 5, 20_000))
    flagged = 0
    for _ in range(40):
        (drift,) = compare_models(reference, _profile(rng.beta(5, 5, 1_001)))
        _, threshold, drifted = drift.metric("score_jensen_shannon")
        assert threshold == 0.1
        flagged += drifted
    assert flagged <= 2  # at most the chance of a test at 5%: 0 expected (the distance of noise is ~0.03)


def test_a_collapse_of_the_scores_is_still_flagged_by_the_score_distance() -> None:
    rng = np.random.default_rng(43)
    reference = _profile(rng.beta(5, 5, 20_000))
    (drift,) = compare_models(reference, _profile(np.clip(rng.normal(0.5, 0.04, 1_001), 0, 1)))
    value, _, drifted = drift.metric("score_jensen_shannon")
    assert drifted and value > 0.3
