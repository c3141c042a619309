"""Prometheus gauges of the drift of finalized windows (set by the worker that finalizes a stream's windows).

::

    qstreams_drift_score{contract,schema,field,metric}          the field's distribution metric, last final window
    qstreams_drift_verdict{contract,schema,field}               1 drift, 0 ok, -1 insufficient data
    qstreams_drift_window_records{contract,schema}              records profiled in the last final window
    qstreams_prediction_confidence{contract,schema,model_version}        mean confidence, last final window
    qstreams_prediction_low_confidence_share{contract,schema,model_version}
    qstreams_prediction_expected_accuracy{contract,schema,model_version} estimated without labels (CBPE)

Labels stay bounded: fields are the ones the reference profiles (fixed by the contract), ``metric`` is
one of the drift methods, and at most :data:`MAX_MODEL_VERSIONS` model versions are kept per
(contract, schema): the least recently seen one is removed when a new one appears.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

from prometheus_client import CollectorRegistry, Gauge

from streams.profiles.drift import Verdict
from streams.windows.finalize import WindowVerdict

__all__ = ["MAX_MODEL_VERSIONS", "DriftMetrics"]

#: Model versions kept per (contract, schema) in the confidence gauges.
MAX_MODEL_VERSIONS = 16

_VERDICT = {Verdict.DRIFT: 1.0, Verdict.OK: 0.0, Verdict.INSUFFICIENT_DATA: -1.0}


class DriftMetrics:
    """The drift gauges, registered in ``registry`` (the worker's :class:`~streams.observability.Metrics`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.score = Gauge(
            "qstreams_drift_score", "Distribution drift metric of a field in the last finalized window.",
            ["contract", "schema", "field", "metric"], registry=r,
        )  # fmt: skip
        self.verdict = Gauge(
            "qstreams_drift_verdict", "Drift verdict of a field in the last finalized window: 1 drift, 0 ok, "
            "-1 insufficient data.", ["contract", "schema", "field"], registry=r,
        )  # fmt: skip
        self.records = Gauge(
            "qstreams_drift_window_records", "Records profiled in the last finalized window.", ["contract", "schema"],
            registry=r,
        )  # fmt: skip
        labels = ["contract", "schema", "model_version"]
        self.confidence = Gauge(
            "qstreams_prediction_confidence", "Mean prediction confidence in the last finalized window.", labels,
            registry=r,
        )  # fmt: skip
        self.low_confidence = Gauge(
            "qstreams_prediction_low_confidence_share",
            "Share of predictions below the confidence threshold in the last finalized window.", labels, registry=r,
        )  # fmt: skip
        self.expected_accuracy = Gauge(
            "qstreams_prediction_expected_accuracy",
            "Accuracy estimated from the scores (no labels) in the last finalized window.", labels, registry=r,
        )  # fmt: skip
        self._versions: dict[tuple[str, str], OrderedDict[str, None]] = {}

    def observe(self, verdict: WindowVerdict) -> None:
        """Set the gauges from a finalized window (nothing when the binding monitors no drift)."""
        wd = verdict.drift
        if wd is None:
            return
        contract, schema = verdict.key.contract_id, verdict.key.schema
        self.records.labels(contract, schema).set(wd.profile.rows)
        for f in wd.report.fields:
            self.verdict.labels(contract, schema, f.field).set(_VERDICT[f.verdict])
            # a field with too few values has no metric, even with a configured method (its verdict says -1)
            main = next((r for r in f.metrics if f.method is not None and r.metric == str(f.method)), None)
            if main is not None:
                self.score.labels(contract, schema, f.field, main.metric).set(main.value)
        for m in wd.models:
            self._touch(contract, schema, m.model_version)
            self.confidence.labels(contract, schema, m.model_version).set(m.mean_confidence)
            self.low_confidence.labels(contract, schema, m.model_version).set(m.low_confidence_share)
            self.expected_accuracy.labels(contract, schema, m.model_version).set(m.expected_accuracy)

    def _touch(self, contract: str, schema: str, version: str) -> None:
        seen = self._versions.setdefault((contract, schema), OrderedDict())
        seen[version] = None
        seen.move_to_end(version)
        while len(seen) > MAX_MODEL_VERSIONS:
            old, _ = seen.popitem(last=False)
            for gauge in (self.confidence, self.low_confidence, self.expected_accuracy):
                with contextlib.suppress(KeyError):
                    gauge.remove(contract, schema, old)
