"""Numeric labels against ``positiveLabel``: compared as numbers, in the labels join, the confidence profiles and the
batch performance partials alike (one mapping, ``streams.profiles.prediction.label_positive``). A JSON ``1.0`` did not
match ``positiveLabel: 1`` (texts ``"1.0"`` and ``"1"``), so a model writing float classes had no positive
prediction and no actual positive: precision and recall null, every pair a true negative. scikit-learn 1.9.1 compares
``[1.0, 0.0, 1.0, 1.0, 0.0]`` with ``[1, 0, 0, 1, 1]`` as numbers (precision 2/3, recall 2/3, accuracy 0.6) and
refuses text mixed with numbers; a text label here equals ``positiveLabel`` as written (``"1"`` is ``1``,
``"1.0"`` is not: scikit-learn's ``"1.0" != "1"``)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.profiles.performance import performance_partials
from streams.profiles.prediction import NO_VERSION, label_positive, label_positive_expr, profile_models
from streams.profiles.spec import PredictionSpec
from streams.settings import Settings
from tests.unit.performance.scenario import (
    CONTRACT,
    LABELS,
    PREDICTIONS,
    T0,
    contract,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_join_cases import Feed

S = 1000
#: (predicted, actual): numbers written as JSON integers and floats, as a model and a labelling service may
CASES: list[tuple[Any, Any]] = [(1.0, 1), (0.0, 0.0), (1, 0), (1.0, 1.0), (0, 1), (0.0, 1.0), (1, 1), (0, 0)]


def _want(cases: list[tuple[Any, Any]]) -> dict[str, int]:
    """The confusion counts of positive class 1, computed as scikit-learn does (``==`` on numbers)."""
    pairs = [(p == 1, a == 1) for p, a in cases]
    return {"tp": sum(p and a for p, a in pairs), "fp": sum(p and not a for p, a in pairs),
            "tn": sum(not p and not a for p, a in pairs), "fn": sum(not p and a for p, a in pairs)}  # fmt: skip


def _joined(positive: str, cases: list[tuple[Any, Any]]) -> dict[str, Any]:
    f = Feed()
    text = CONTRACT.replace("positiveLabel: fraud", f"positiveLabel: {positive}")
    f.joiner = PerformanceJoiner(join_spec(contract(text), Settings()), joiner_id="j", events_topic="ev", now=f.clock)
    f.joiner.assign({PREDICTIONS: [0], LABELS: [0]})
    for i, (predicted, actual) in enumerate(cases):
        f.send(PREDICTIONS, {**prediction_record(f"p{i}", T0 + i * S, "A", 0.5, True), "predicted_label": predicted})
        f.send(LABELS, {**label_record(f"p{i}", T0 + i * S, True), "actual": actual})
    assert f.joiner.counters.skipped == {}
    result: dict[str, Any] = f.finish()[(T0, "A")]
    return result


@pytest.mark.parametrize("positive", ["1", "1.0", "'1'", "'1.0'", "+1", "1e0"])
def test_numeric_labels_are_compared_with_positive_label_as_numbers_in_the_join(positive: str) -> None:
    want = _want(CASES)
    assert want == {"tp": 3, "fp": 1, "tn": 2, "fn": 2}
    got = _joined(positive, CASES)
    assert got["confusion"] == want
    assert (got["precision"], got["recall"]) == (3 / 4, 3 / 5)


@pytest.mark.parametrize("dtype", [pl.Float64, pl.Int64, pl.Float32, pl.Int8])
@pytest.mark.parametrize("positive", [1, 1.0, "1"])
def test_numeric_label_columns_count_positives_as_the_join_does(dtype: pl.DataType, positive: object) -> None:
    predicted, actual = zip(*CASES, strict=True)
    frame = pl.DataFrame(
        {"s": [0.5] * len(CASES), "l": [*predicted[:-1], None], "y": actual},
        schema={"s": pl.Float64, "l": dtype, "y": dtype},
        strict=False,
    )
    spec = PredictionSpec.from_dict({"score": "s", "label": "l", "positiveLabel": positive})
    assert profile_models(frame, spec)[NO_VERSION].positives == sum(p == 1 for p in predicted[:-1]) == 4
    partial = performance_partials(frame, spec, "y")[NO_VERSION]  # the null predicted label is left out
    assert (partial.tp, partial.fp, partial.tn, partial.fn) == tuple(_want(CASES[:-1]).values())


@pytest.mark.parametrize(
    ("value", "positive", "wanted"),
    [
        (1.0, "1", True), (1, "1.0", True), (2, "1", False), (0.5, "0.5", True), (1, "fraud", False),
        ("1", "1", True), ("1.0", "1", False), ("01", "1", False), (True, "True", True), (1, "True", False),
        (True, "1", False), (float("nan"), "1", None), (None, "1", None), ({}, "1", None), ([1], "1", None),
    ],
)  # fmt: skip
def test_one_label_against_positive_label(value: object, positive: str, wanted: bool | None) -> None:
    assert label_positive(value, positive) is wanted
    dtype = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.String}.get(type(value))
    if dtype is not None:  # the frame's reading of the same value
        frame = pl.DataFrame({"l": [value]}, schema={"l": dtype})
        assert frame.select(label_positive_expr(pl.col("l"), dtype, positive)).item() is wanted
