"""Realized performance once labels arrive: exact, mergeable partials per model version.

A :class:`PerformancePartial` holds the confusion counts, score histograms of the actual positives
and negatives (equal-width bins over [0, 1]), the sum of scores per bin and label-delay totals.
Merging adds them, so partials of partitions, workers and batches combine exactly: the score sums are
integers in units of 2⁻⁶⁰ (:func:`score_units`), so the ECE is the same whatever the merge order (float
sums were not: 720 orders of 6 partials gave 358 distinct sums); only the label-delay sum is a float. From
them:

* accuracy, precision, recall: exact;
* ROC AUC: the Mann–Whitney probability from the two histograms, pairs within one bin counted
  half; off by at most ``0.5 * sum_i pos_i * neg_i / (P * N)`` from the exact AUC;
* expected calibration error (ECE) on ``calibration_bins`` equal-width bins: exact given the bins and the
  2⁻⁶⁰ grid (one rounding, at the end).

Joining labels to predictions (by prediction id, within a horizon, restart-safe) is the stream
layer's job; it hands this module frames with the score, the predicted and the actual class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.profiles.prediction import (
    HALF_BITS,
    NO_VERSION,
    SCORE_UNIT,
    label_positive_expr,
    positive_expr,
    read_units,
    score_bin_expr,
    score_units,
    units_halves,
)
from streams.profiles.spec import PredictionSpec

__all__ = [
    "CALIBRATION_BINS",
    "SCORE_UNIT",
    "PerformancePartial",
    "merge_performance",
    "performance_partials",
    "score_units",
]

#: bins of the expected calibration error the events report: whole score bins each, so ``scoreBins`` is a multiple
CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True)
class PerformancePartial:
    tp: int
    fp: int
    tn: int
    fn: int
    positives_hist: tuple[int, ...]  # scores of actual positives per bin
    negatives_hist: tuple[int, ...]
    score_sums: tuple[int, ...]  # sum of scores per bin (both classes), in units of 2**-60 (SCORE_UNIT)
    delay_count: int = 0
    delay_sum: float = 0.0  # seconds from prediction to label
    delay_max: float = 0.0
    unmatched_predictions: int = 0  # predictions whose label did not arrive within the horizon
    orphan_labels: int = 0  # labels without a prediction

    @property
    def count(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.count if self.count else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def roc_auc(self) -> float:
        pos, neg = sum(self.positives_hist), sum(self.negatives_hist)
        if not pos or not neg:
            return float("nan")
        below = 0
        wins = 0.0
        for p, n in zip(self.positives_hist, self.negatives_hist, strict=True):
            wins += p * (below + 0.5 * n)
            below += n
        return wins / (pos * neg)

    @property
    def roc_auc_error_bound(self) -> float:
        pos, neg = sum(self.positives_hist), sum(self.negatives_hist)
        if not pos or not neg:
            return float("nan")
        same = sum(p * n for p, n in zip(self.positives_hist, self.negatives_hist, strict=True))
        return 0.5 * same / (pos * neg)

    def calibration_error(self, bins: int = CALIBRATION_BINS) -> float:
        """Expected calibration error: ``sum_b (n_b / N) |mean score_b - positive rate_b|`` on ``bins`` bins."""
        fine = len(self.score_sums)
        if bins < 1 or fine % bins:
            raise ValueError(f"calibration bins ({bins}) must divide the {fine} score bins")
        if not self.count:
            return float("nan")
        step = fine // bins
        total = 0  # exact: sum_b |scores_b - positives_b| in units of 2**-60, divided once
        for b in range(bins):
            sl = slice(b * step, (b + 1) * step)
            total += abs(sum(self.score_sums[sl]) - sum(self.positives_hist[sl]) * SCORE_UNIT)
        return total / (self.count * SCORE_UNIT)

    @property
    def mean_label_delay(self) -> float:
        return self.delay_sum / self.delay_count if self.delay_count else float("nan")

    def merge(self, other: PerformancePartial) -> PerformancePartial:
        if len(self.score_sums) != len(other.score_sums):
            raise ValueError("performance partials with different score bins cannot merge")

        def add(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(x + y for x, y in zip(a, b, strict=True))

        return PerformancePartial(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn,
            add(self.positives_hist, other.positives_hist), add(self.negatives_hist, other.negatives_hist),
            add(self.score_sums, other.score_sums), self.delay_count + other.delay_count,
            self.delay_sum + other.delay_sum, max(self.delay_max, other.delay_max),
            self.unmatched_predictions + other.unmatched_predictions, self.orphan_labels + other.orphan_labels,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn,
            "positives_hist": list(self.positives_hist), "negatives_hist": list(self.negatives_hist),
            "score_sums": [str(x) for x in self.score_sums],  # past 64 bits: text (JSON integers stop there)
            "delay_count": self.delay_count, "delay_sum": self.delay_sum, "delay_max": self.delay_max,
            "unmatched_predictions": self.unmatched_predictions, "orphan_labels": self.orphan_labels,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PerformancePartial:
        return cls(
            int(d["tp"]), int(d["fp"]), int(d["tn"]), int(d["fn"]),
            tuple(int(x) for x in d["positives_hist"]), tuple(int(x) for x in d["negatives_hist"]),
            tuple(read_units(x) for x in d["score_sums"]), int(d["delay_count"]), float(d["delay_sum"]),
            float(d["delay_max"]), int(d["unmatched_predictions"]), int(d["orphan_labels"]),
        )  # fmt: skip


def merge_performance(
    a: Mapping[str, PerformancePartial], b: Mapping[str, PerformancePartial]
) -> dict[str, PerformancePartial]:
    out = dict(a)
    for version, partial in b.items():
        out[version] = out[version].merge(partial) if version in out else partial
    return dict(sorted(out.items()))


def performance_partials(
    frame: pl.DataFrame, spec: PredictionSpec, actual: str, *, delay_seconds: str | None = None
) -> dict[str, PerformancePartial]:
    """Partials per model version from joined rows: the prediction fields plus ``actual``.

    ``actual`` is a boolean column, or a label column compared with ``spec.positive_label`` (as the labels join
    compares a label: :func:`~streams.profiles.prediction.label_positive_expr`).
    Rows with a null or out-of-range score or a null actual are left out.
    """
    if frame.height == 0:
        return {}
    bins = spec.score_bins
    score = pl.col(spec.score).cast(pl.Float64, strict=False).fill_nan(None)
    truth = pl.col(actual)
    if frame.schema[actual] != pl.Boolean:
        if spec.positive_label is None:
            raise ValueError("a non-boolean actual column needs positiveLabel in qstreams.prediction")
        truth = label_positive_expr(truth, frame.schema[actual], spec.positive_label)
    version = pl.col(spec.model_version).cast(pl.String).fill_null("") if spec.model_version else pl.lit(NO_VERSION)
    delay = pl.col(delay_seconds).cast(pl.Float64, strict=False) if delay_seconds else pl.lit(None, dtype=pl.Float64)
    base = frame.select(
        version.alias("v"), score.alias("s"), truth.alias("y"), positive_expr(spec, frame.schema).alias("p"),
        score_bin_expr(score, bins).alias("b"), delay.alias("d"),
    ).filter(pl.col("s").is_between(0.0, 1.0) & pl.col("y").is_not_null() & pl.col("p").is_not_null())  # fmt: skip
    # exact score sums (score_units) in two int64 halves of 30 bits each: no overflow below 2**33 rows per bin
    high, low = units_halves(pl.col("s"))
    per_bin = base.group_by("v", "b").agg(
        pl.col("y").sum().alias("pos"), (~pl.col("y")).sum().alias("neg"),
        high.cast(pl.Int64).sum().alias("hi"), low.cast(pl.Int64).sum().alias("lo"),
    )  # fmt: skip
    totals = base.group_by("v").agg(
        (pl.col("p") & pl.col("y")).sum().alias("tp"), (pl.col("p") & ~pl.col("y")).sum().alias("fp"),
        (~pl.col("p") & ~pl.col("y")).sum().alias("tn"), (~pl.col("p") & pl.col("y")).sum().alias("fn"),
        pl.col("d").count().alias("dc"), pl.col("d").sum().alias("ds"), pl.col("d").max().alias("dm"),
    )  # fmt: skip
    out: dict[str, PerformancePartial] = {}
    for row in totals.iter_rows(named=True):
        pos, neg, sums = [0] * bins, [0] * bins, [0] * bins
        for b, p, n, hi, lo in (
            per_bin.filter(pl.col("v") == row["v"]).select("b", "pos", "neg", "hi", "lo").iter_rows()
        ):
            pos[b], neg[b], sums[b] = int(p), int(n), (int(hi) << HALF_BITS) + int(lo)
        out[row["v"]] = PerformancePartial(
            int(row["tp"]), int(row["fp"]), int(row["tn"]), int(row["fn"]), tuple(pos), tuple(neg), tuple(sums),
            int(row["dc"]), float(row["ds"] or 0.0), float(row["dm"] or 0.0),
        )  # fmt: skip
    return dict(sorted(out.items()))
