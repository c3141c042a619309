"""A NaN or infinite score is a bad score: ``bad_score`` in the labels join (counted, as a score outside [0, 1] is),
``invalid`` in the confidence profiles, left out of the batch performance partials. Python's ``json.dumps`` writes a
float NaN as ``NaN`` (and infinity as ``Infinity``), which is not JSON: the join counted such a prediction
``undecodable``, hiding that its score was the problem."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from streams.profiles.performance import performance_partials
from streams.profiles.prediction import NO_VERSION, profile_models
from streams.profiles.spec import PredictionSpec
from tests.unit.performance.scenario import LABELS, PREDICTIONS, T0, label_record, prediction_record
from tests.unit.performance.test_join_cases import Feed


def _with_score(text: bytes) -> bytes:
    placeholder = orjson.dumps(prediction_record("p", T0, "A", 0.123456, True))
    assert placeholder.count(b"0.123456") == 1
    return placeholder.replace(b"0.123456", text)


@pytest.mark.parametrize("score", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_a_nan_or_infinite_score_is_a_bad_score_in_the_join(score: bytes) -> None:
    f = Feed()
    f.send(PREDICTIONS, _with_score(score))
    f.send(PREDICTIONS, _with_score(b"1.5"))  # out of range: the same reason
    f.send(PREDICTIONS, b'{"prediction_id": "q", "score": NaN, ')  # not JSON even so
    f.send(PREDICTIONS, b'{"prediction_id": "\\ud800", "score": 0.5}')  # a lone surrogate: the state holds no such id
    f.send(LABELS, label_record("p", T0, True))
    assert f.joiner.counters.skipped == {("predictions", "bad_score"): 2, ("predictions", "undecodable"): 2}
    got = f.finish()
    assert got[(T0, "")]["orphan_labels"] == 1 and got[(T0, "")]["count"] == 0  # its prediction took no part


def test_the_profiles_count_a_nan_or_infinite_score_as_invalid() -> None:
    scores = [0.9, float("nan"), float("inf"), float("-inf"), 1.5, None, 0.2]
    frame = pl.DataFrame({"s": scores, "l": ["f"] * 7, "y": [True] * 7})
    spec = PredictionSpec.from_dict({"score": "s", "label": "l", "positiveLabel": "f"})
    profile = profile_models(frame, spec)[NO_VERSION]
    assert (profile.count, profile.invalid) == (2, 5)
    partial = performance_partials(frame, spec, "y")[NO_VERSION]
    assert partial.tp + partial.fp + partial.tn + partial.fn == 2
