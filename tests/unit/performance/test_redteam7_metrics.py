"""Red-team pass 7 on realized performance: the reported metrics against an independent computation (numpy,
first principles) at the edges the other tests leave out.

Window 1 m, horizon 5 m, lateness 2 m (``scenario.CONTRACT``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from streams.errors import ContractError
from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.settings import Settings
from streams.windows.clock import event_times
from tests.unit.performance.scenario import (
    CONTRACT,
    LABELS,
    PREDICTIONS,
    T0,
    contract,
    iso,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_join_cases import Feed

S = 1000
BINS_AT = "          positiveLabel: fraud\n"


def _with_bins(bins: int) -> str:
    assert BINS_AT in CONTRACT
    return CONTRACT.replace(BINS_AT, f"{BINS_AT}          scoreBins: {bins}\n")


@pytest.mark.parametrize("bins", [2, 25, 64, 1001])
def test_score_bins_that_ten_calibration_bins_cannot_be_made_of_are_refused_at_the_labels_line(bins: int) -> None:
    # the events' expected calibration error is on 10 equal-width bins made of whole score bins: with 25 score
    # bins (valid for confidence profiles) every final window raised ValueError in the joiner (and the merger)
    with pytest.raises(ContractError, match=rf"scoreBins \({bins}\) must be a multiple of 10") as info:
        join_spec(contract(_with_bins(bins)), Settings())
    labels_line = next(i for i, line in enumerate(_with_bins(bins).splitlines(), 1) if "labels: {" in line)
    assert info.value.line == labels_line


def test_score_bins_a_multiple_of_ten_give_the_ece_on_ten_bins() -> None:
    f = Feed()
    spec = join_spec(contract(_with_bins(20)), Settings())  # 20 score bins of 0.05
    f.joiner = PerformanceJoiner(spec, joiner_id="j", events_topic="ev", now=f.clock)
    f.joiner.assign({PREDICTIONS: [0], LABELS: [0]})
    rng = np.random.default_rng(7)
    scores = rng.uniform(0, 1, 40).round(4)
    actual = rng.uniform(0, 1, 40) < scores
    for i, (s, y) in enumerate(zip(scores, actual, strict=True)):
        f.pred(f"p{i}", i, float(s))
        f.label(f"p{i}", i + 1, bool(y))
    got = f.finish()[(T0, "A")]
    edges = np.array([k / 10 for k in range(1, 10)])
    b = np.searchsorted(edges, scores, side="right")
    ece = sum(abs(scores[b == k].sum() - actual[b == k].sum()) for k in range(10)) / len(scores)
    assert got["count"] == 40
    assert got["calibration_error"] == pytest.approx(ece, abs=1e-12)


@pytest.mark.parametrize("value", [{"class": "fraud"}, ["fraud"], {}, []])
def test_an_object_or_array_label_is_a_bad_label_not_a_negative(value: object) -> None:
    # a JSON object or array is not a label comparable with positiveLabel: it was str()-ed and counted as a
    # negative (an actual "legit", a predicted "legit"), silently moving precision and recall
    f = Feed()
    f.pred("a", 0, 0.9)
    f.label("a", 1, True)
    f.send(PREDICTIONS, {**prediction_record("b", T0 + 2 * S, "A", 0.9, True), "predicted_label": value})
    f.pred("c", 3, 0.9)
    f.send(LABELS, {**label_record("c", T0 + 4 * S, True), "actual": value})
    assert f.joiner.counters.skipped == {("predictions", "bad_label"): 1, ("labels", "bad_label"): 1}
    got = f.finish()[(T0, "A")]
    assert (got["count"], got["confusion"]["tp"], got["unmatched_predictions"]) == (1, 1, 1)  # "c" never labelled


@pytest.mark.parametrize("stamp", ["2024-06-01T00:00:59.9996Z", "2024-06-01T00:00:59.999999+00:00"])
def test_a_prediction_time_with_a_fraction_of_a_millisecond_falls_in_the_stream_time_window(stamp: str) -> None:
    # the windows of prediction time are the stream-time windows of the predictions (event_times: polars truncates
    # to the millisecond); the join rounded, so 00:00:59.9996 fell in the next window ([60 s, 120 s))
    assert iso(T0) == "2024-06-01T00:00:00Z"
    assert int(event_times(pl.DataFrame({"t": [stamp]}), "t", np.zeros(1, dtype=np.int64)).ms[0]) == T0 + 59_999
    f = Feed()
    f.send(PREDICTIONS, {**prediction_record("a", T0, "A", 0.9, True), "predicted_at": stamp})
    f.send(LABELS, {**label_record("a", T0, True), "labelled_at": stamp})
    got = f.finish()
    assert set(got) == {(T0, "A")}  # one window (60 s): [T0, T0 + 60 s)
    assert got[(T0, "A")]["count"] == 1 and got[(T0, "A")]["label_delay"]["max_seconds"] == 0.0


@pytest.mark.parametrize("positive", ["true", "'true'", "True"])
def test_a_boolean_predicted_label_is_compared_with_a_true_positive_label(positive: str) -> None:
    # a binary model predicting JSON booleans, positiveLabel true (YAML: the text "True") or "true" (polars reads a
    # boolean as the text "true"): the actual boolean label is taken as is, the predicted one was str()-ed to
    # "True", so with positiveLabel "true" every prediction was a negative (precision null, recall 0)
    text = CONTRACT.replace("positiveLabel: fraud", f"positiveLabel: {positive}")
    f = Feed()
    f.joiner = PerformanceJoiner(join_spec(contract(text), Settings()), joiner_id="j", events_topic="ev", now=f.clock)
    f.joiner.assign({PREDICTIONS: [0], LABELS: [0]})
    cases = [(True, True), (True, False), (False, True), (False, False), (True, True)]
    for i, (predicted, actual) in enumerate(cases):
        f.send(PREDICTIONS, {**prediction_record(f"p{i}", T0 + i * S, "A", 0.5, True), "predicted_label": predicted})
        f.send(LABELS, {**label_record(f"p{i}", T0 + i * S, True), "actual": actual})
    yp, y = np.array(cases).T
    want = {"tp": int((yp & y).sum()), "fp": int((yp & ~y).sum()), "tn": int((~yp & ~y).sum()),
            "fn": int((~yp & y).sum())}  # fmt: skip
    assert f.finish()[(T0, "A")]["confusion"] == want == {"tp": 2, "fp": 1, "tn": 1, "fn": 1}


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda text: _with_bins(25), "scoreBins (25) must be a multiple of 10"),
        (lambda text: text.replace("predictionId: prediction_id", "predictionId: no_such_field"),
         "predictionId names 'no_such_field', which is not a property"),
    ],
)  # fmt: skip
def test_lint_says_what_the_join_refuses_at_the_labels_line(edit: Callable[[str], str], words: str) -> None:
    """``qstreams contracts lint`` in a data repo's CI says what a performance joiner refuses at its start: both were
    found only when the joiner started (lint checked the score, label and version fields only)."""
    from streams.lint import monitoring_findings

    text = edit(CONTRACT)
    assert text != CONTRACT
    with pytest.raises(ContractError) as refused:
        join_spec(contract(text), Settings())
    findings = monitoring_findings(contract(text))
    assert [f.line for f in findings if words in f.message] == [refused.value.line]
    assert refused.value.line is not None and "labels: {" in text.splitlines()[refused.value.line - 1]
    assert monitoring_findings(contract(CONTRACT)) == []
