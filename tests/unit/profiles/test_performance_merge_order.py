"""Realized performance merged from partials in any order is identical, bit for bit, to the one-pass partial, and its
ECE equals the exact rational value computed from first principles (fractions, no float sum)."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import polars as pl

from streams.performance.joiner import _Tally
from streams.profiles.performance import SCORE_UNIT, PerformancePartial, performance_partials, score_units
from streams.profiles.spec import PredictionSpec

SPEC = PredictionSpec(score="s", model_version="v")


def _data(n: int, seed: int) -> tuple[list[float], list[bool]]:
    rng = random.Random(seed)
    scores = [rng.random() for _ in range(n)]
    scores[:4] = [0.0, 1.0, 0.3, 2.0**-20]  # the ends, an edge, a score below 2**-8 (on the 2**-60 grid: floored)
    return scores, [rng.random() < s for s in scores]


def _partial(scores: list[float], actual: list[bool]) -> PerformancePartial:
    frame = pl.DataFrame({"s": scores, "y": actual, "v": ["A"] * len(scores)})
    return performance_partials(frame, SPEC, "y")["A"]


def _exact_ece(scores: list[float], actual: list[bool]) -> Fraction:
    # 10 bins [k/10, (k+1)/10), 1.0 in the last; each score on the documented 2**-60 grid
    sums: dict[int, Fraction] = {}
    for s, y in zip(scores, actual, strict=True):
        b = min(sum(1 for k in range(1, 10) if k / 10 <= s), 9)
        sums[b] = sums.get(b, Fraction(0)) + Fraction(int(s * SCORE_UNIT // 1), SCORE_UNIT) - int(y)
    return sum((abs(v) for v in sums.values()), Fraction(0)) / len(scores)


def test_any_merge_order_gives_the_one_pass_partial_and_the_exact_ece() -> None:
    scores, actual = _data(3000, 5)
    whole = _partial(scores, actual)
    cuts = [0, 400, 1100, 1900, 2300, 2500, 3000]
    parts = [_partial(scores[a:b], actual[a:b]) for a, b in itertools.pairwise(cuts)]
    merged = set()
    for order in itertools.permutations(parts):
        acc = order[0]
        for p in order[1:]:
            acc = acc.merge(p)
        merged.add(acc)
    assert merged == {whole}  # 720 orders, one partial (float sums gave 358 distinct ones)
    assert whole.calibration_error(10) == float(_exact_ece(scores, actual))
    assert whole.score_sums[0] > 0 and score_units(2.0**-20) == 2**40  # the grid holds the small score exactly


def test_the_join_path_sums_as_the_frame_path_and_reads_back_from_its_state() -> None:
    scores, actual = _data(500, 6)
    tally = _Tally.empty(SPEC.score_bins)
    for s, y in zip(scores, actual, strict=True):
        tally.pair(s, s >= 0.5, y, 0.0)
    joined = tally.partial()
    frame = _partial(scores, actual)
    assert joined.score_sums == frame.score_sums and joined.positives_hist == frame.positives_hist
    assert PerformancePartial.from_dict(joined.as_dict()) == joined
    # a state record written before the sums were exact (floats) still reads, on the grid
    legacy = joined.as_dict() | {"score_sums": [float(x) / SCORE_UNIT for x in joined.score_sums]}
    restored = PerformancePartial.from_dict(legacy)
    assert abs(restored.calibration_error(10) - joined.calibration_error(10)) < 1e-12


def test_confidence_profiles_merge_in_any_order_to_the_exact_sums() -> None:
    from streams.profiles.prediction import ModelProfile, profile_models

    spec = PredictionSpec(score="s", model_version="v", positive_label="fraud", label="l")
    scores, _ = _data(2000, 7)
    labels = ["fraud" if s >= 0.4 else "legit" for s in scores]  # the label decides, not the 0.5 threshold
    frame = pl.DataFrame({"s": scores, "l": labels, "v": ["A"] * len(scores)})
    whole = profile_models(frame, spec)["A"]
    cuts = [0, 100, 700, 1200, 1500, 2000]
    parts = [profile_models(frame[a:b], spec)["A"] for a, b in itertools.pairwise(cuts)]
    merged: set[ModelProfile] = set()
    for order in itertools.permutations(parts):
        acc = order[0]
        for p in order[1:]:
            acc = acc.merge(p)
        merged.add(acc)
    assert merged == {whole}
    # from first principles, on the documented grid: u = floor(s * 2**60), confidence max(u, 2**60 - u)
    units = [int(s * SCORE_UNIT // 1) for s in scores]
    n = len(scores)
    assert whole.mean_confidence == float(Fraction(sum(max(u, SCORE_UNIT - u) for u in units), n * SCORE_UNIT))
    right = sum(u if lab == "fraud" else SCORE_UNIT - u for u, lab in zip(units, labels, strict=True))
    assert whole.expected_accuracy == float(Fraction(right, n * SCORE_UNIT))
    assert ModelProfile.from_dict(whole.as_dict()) == whole
