"""Prometheus metrics of the performance joiner, in their own registry (``/metrics`` of ``qstreams performance run``)::

    qstreams_model_accuracy{contract,schema,model_version}           realized, last final window
    qstreams_model_precision{contract,schema,model_version}
    qstreams_model_recall{contract,schema,model_version}
    qstreams_model_roc_auc{contract,schema,model_version}
    qstreams_model_calibration_error{contract,schema,model_version}
    qstreams_model_label_delay_seconds{contract,schema,model_version}  mean, last final window
    qstreams_model_labelled_predictions{contract,schema,model_version} matched pairs, last final window
    qstreams_model_unmatched_predictions{contract,schema,model_version}
    qstreams_model_orphan_labels{contract,schema,model_version}
    qstreams_performance_records_total{kind}     kind: matched | duplicate | late
    qstreams_performance_skipped_records_total{topic,reason}  topic: predictions | labels

Labels stay bounded as in the drift gauges: at most :data:`MAX_MODEL_VERSIONS` model versions per
(contract, schema), the least recently published one removed when a new one appears; reasons are
:class:`~streams.performance.binding.SkipReason` values. A gauge of a window without labelled
predictions (NaN metric) is left as it was.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

if TYPE_CHECKING:
    from streams.performance.binding import JoinSpec
    from streams.profiles.performance import PerformancePartial

__all__ = ["MAX_MODEL_VERSIONS", "JoinCounters"]

#: Model versions kept per (contract, schema) in the performance gauges.
MAX_MODEL_VERSIONS = 16

_GAUGES = (
    ("accuracy", "Realized accuracy"), ("precision", "Realized precision"), ("recall", "Realized recall"),
    ("roc_auc", "Realized ROC AUC"), ("calibration_error", "Expected calibration error (10 bins)"),
    ("label_delay_seconds", "Mean label delay"), ("labelled_predictions", "Predictions joined to a label"),
    ("unmatched_predictions", "Predictions without a label within the horizon"),
    ("orphan_labels", "Labels without a prediction within the horizon"),
)  # fmt: skip


class JoinCounters:
    """The joiner's counters and gauges; :attr:`counts` holds the record outcomes as plain ints too."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.counts: dict[str, int] = {"matched": 0, "duplicate": 0, "late": 0}
        self.skipped: dict[tuple[str, str], int] = {}
        self.records = Counter("qstreams_performance_records", "Joiner input records by outcome.", ["kind"],
                               registry=r)  # fmt: skip
        self.skipped_total = Counter("qstreams_performance_skipped_records", "Records the join could not read.",
                                     ["topic", "reason"], registry=r)  # fmt: skip
        labels = ["contract", "schema", "model_version"]
        self.gauges = {name: Gauge(f"qstreams_model_{name}", f"{text} in the last final window of prediction time.",
                                   labels, registry=r) for name, text in _GAUGES}  # fmt: skip
        self._versions: dict[tuple[str, str], OrderedDict[str, None]] = {}
        self._children: dict[str, Any] = {}

    def skip(self, prediction: bool, reason: str) -> None:
        topic = "predictions" if prediction else "labels"
        self.skipped[(topic, reason)] = self.skipped.get((topic, reason), 0) + 1
        self.skipped_total.labels(topic, reason).inc()

    def count(self, kind: str) -> None:
        """One input record ``matched`` (the pair), ``duplicate`` or ``late``."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        child = self._children.get(kind)
        if child is None:
            child = self._children[kind] = self.records.labels(kind)
        child.inc()

    def published(self, spec: JoinSpec, version: str, p: PerformancePartial) -> None:
        contract, schema = spec.contract.id, spec.schema
        seen = self._versions.setdefault((contract, schema), OrderedDict())
        seen[version] = None
        seen.move_to_end(version)
        while len(seen) > MAX_MODEL_VERSIONS:
            old, _ = seen.popitem(last=False)
            for gauge in self.gauges.values():
                with contextlib.suppress(KeyError):
                    gauge.remove(contract, schema, old)
        values = {
            "accuracy": p.accuracy, "precision": p.precision, "recall": p.recall, "roc_auc": p.roc_auc,
            "calibration_error": p.calibration_error() if p.count else math.nan,
            "label_delay_seconds": p.mean_label_delay, "labelled_predictions": p.count,
            "unmatched_predictions": p.unmatched_predictions, "orphan_labels": p.orphan_labels,
        }  # fmt: skip
        for name, value in values.items():
            if math.isfinite(value):
                self.gauges[name].labels(contract, schema, version).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
