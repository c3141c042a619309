"""The ``data`` of the drift, confidence and performance events, as plain JSON-ready dicts.

The events layer wraps them in CloudEvents (types ``io.qualitystreams.distribution.drift.v1``,
``io.qualitystreams.prediction.confidence.v1``, ``io.qualitystreams.model.performance.v1``; JSON
Schemas in ``streams/events/schemas/``). Non-finite numbers become ``null``.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from streams.profiles.confidence import confidence_distribution
from streams.profiles.drift import DriftReport, Verdict
from streams.profiles.performance import PerformancePartial
from streams.profiles.prediction import ModelDrift, ModelProfile

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["confidence_data", "drift_data", "performance_data"]

Window = tuple[datetime, datetime]


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _head(contract: Contract, schema: str, topic: str, window: Window) -> dict[str, Any]:
    return {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": schema,
        "topic": topic,
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
    }


def drift_data(report: DriftReport, contract: Contract, topic: str, window: Window) -> dict[str, Any]:
    fields = [f.as_dict() for f in report.fields]
    verdicts = {v.value: sum(1 for f in report.fields if f.verdict is v) for v in Verdict}
    return {
        **_head(contract, report.schema, topic, window),
        "reference": {"sha256": report.reference_sha256, "rows": report.reference_rows},
        "records": report.rows,
        "verdicts": verdicts,
        "drifted": list(report.drifted),
        "fields": fields,
    }


def confidence_data(
    result: ModelDrift,
    contract: Contract,
    schema: str,
    topic: str,
    window: Window,
    *,
    reference_sha256: str,
    reference_rows: int,
    confidence_threshold: float,
    profile: ModelProfile | None = None,
) -> dict[str, Any]:
    """The confidence event's data; with the version's window ``profile``, its ``confidence_distribution``
    (quantiles and a compact histogram from the score histogram: :mod:`streams.profiles.confidence`)."""
    if profile is not None and profile.count != result.count:  # not of the same window: no distribution, no crash
        log.error(
            "The profile of model version %r counts %d valid scores and its verdict %d: they are not of the same "
            "window; the confidence event goes out without its confidence_distribution.",
            result.model_version,
            profile.count,
            result.count,
        )
        profile = None
    metrics = [
        {"metric": name, "value": _num(value), "threshold": threshold, "drifted": drifted}
        for name, value, threshold, drifted in result.metrics
    ]
    data = {
        **_head(contract, schema, topic, window),
        "reference": {"sha256": reference_sha256, "rows": reference_rows},
        "model_version": result.model_version,
        "new_version": result.new_version,
        "baseline_version": result.baseline_version,
        "verdict": result.verdict,
        "count": result.count,
        "mean_confidence": _num(result.mean_confidence),
        "low_confidence_share": _num(result.low_confidence_share),
        "confidence_threshold": confidence_threshold,
        "expected_accuracy": _num(result.expected_accuracy),
        "label_mix": dict(result.label_mix),
        "metrics": metrics,
    }
    if profile is not None:
        data["confidence_distribution"] = confidence_distribution(profile.hist)
    return data


def performance_data(
    partial: PerformancePartial, model_version: str, contract: Contract, schema: str, topic: str, window: Window
) -> dict[str, Any]:
    return {
        **_head(contract, schema, topic, window),
        "model_version": model_version,
        "count": partial.count,
        "confusion": {"tp": partial.tp, "fp": partial.fp, "tn": partial.tn, "fn": partial.fn},
        "accuracy": _num(partial.accuracy),
        "precision": _num(partial.precision),
        "recall": _num(partial.recall),
        "roc_auc": _num(partial.roc_auc),
        "roc_auc_error_bound": _num(partial.roc_auc_error_bound),
        "calibration_error": _num(partial.calibration_error(10)),
        "label_delay": {
            "count": partial.delay_count,
            "mean_seconds": _num(partial.mean_label_delay),
            "max_seconds": partial.delay_max if partial.delay_count else None,  # no pair: undefined, not 0
        },
        "unmatched_predictions": partial.unmatched_predictions,
        "orphan_labels": partial.orphan_labels,
    }
