"""A Boolean predicted label against ``positiveLabel``: the confidence profiles and the batch performance partials
count a positive as the performance join does (``streams.performance.binding.decode``: a JSON Boolean matches
``positiveLabel`` YAML ``true``, read as ``True``, and ``"true"``). With YAML ``true`` the profiles compared polars'
text ``"true"`` with ``"True"`` and never counted a positive, while the join did."""

from __future__ import annotations

import polars as pl
import pytest

from streams.profiles.performance import performance_partials
from streams.profiles.prediction import NO_VERSION, profile_models
from streams.profiles.spec import PredictionSpec

LABELS = [True, False, True, True, None, False, True]
SCORES = [0.9, 0.2, 0.7, 0.8, 0.6, 0.4, 0.95]
ACTUAL = [True, False, False, True, True, True, True]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"s": SCORES, "l": LABELS, "y": ACTUAL}, schema={"s": pl.Float64, "l": pl.Boolean, "y": pl.Boolean}
    )


@pytest.mark.parametrize(
    ("positive", "wanted"), [(True, True), ("true", True), ("True", True), (False, False), ("false", False)]
)
def test_a_boolean_label_is_positive_where_it_equals_positive_label_written_either_way(
    positive: object, wanted: bool
) -> None:
    spec = PredictionSpec.from_dict({"score": "s", "label": "l", "positiveLabel": positive})
    expected = sum(1 for v in LABELS if v is wanted)
    profile = profile_models(_frame(), spec)[NO_VERSION]
    assert profile.positives == expected > 0
    partial = performance_partials(_frame(), spec, "y")[NO_VERSION]
    rows = [(v, y) for v, y in zip(LABELS, ACTUAL, strict=True) if v is not None]
    assert (partial.tp, partial.fp) == (
        sum(1 for v, y in rows if v is wanted and y),
        sum(1 for v, y in rows if v is wanted and not y),
    )


def test_a_text_label_is_still_compared_as_written() -> None:
    spec = PredictionSpec.from_dict({"score": "s", "label": "l", "positiveLabel": "True"})
    frame = pl.DataFrame({"s": [0.9, 0.8, 0.1], "l": ["True", "true", "TRUE"]})
    assert profile_models(frame, spec)[NO_VERSION].positives == 1
