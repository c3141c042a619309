"""The drift gauges of a finalized window whose field has a configured method but too few values: no score to set,
and no crash (``FieldDrift.metric`` of the configured method raised KeyError, in the observer that closes windows)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import polars as pl
from prometheus_client import CollectorRegistry

from streams.profiles.drift import Verdict, compare
from streams.profiles.profile import profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec
from streams.windows.drift_metrics import DriftMetrics

SPEC = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, (0.0, 1.0, 2.0)),))
REF = profile_frame(pl.DataFrame({"x": np.linspace(0, 2, 500)}), SPEC)
LABELS = {"contract": "c", "schema": "t", "field": "x"}


def _observe(gauges: DriftMetrics, values: list[float]) -> None:
    cur = profile_frame(pl.DataFrame({"x": values}), SPEC)
    report = compare(REF, cur, edges={"x": SPEC.fields[0].edges}, overrides={"x": {"method": "psi"}})
    verdict = SimpleNamespace(drift=SimpleNamespace(profile=cur, report=report, models=()),
                              key=SimpleNamespace(contract_id="c", schema="t"))  # fmt: skip
    gauges.observe(cast(Any, verdict))


def test_a_window_with_too_few_values_for_the_configured_method_sets_its_verdict_and_no_score() -> None:
    registry = CollectorRegistry()
    gauges = DriftMetrics(registry)
    _observe(gauges, list(np.linspace(0, 2, 200)))  # judged: a PSI value
    psi = registry.get_sample_value("qstreams_drift_score", LABELS | {"metric": "psi"})
    assert psi is not None and psi < 0.1
    _observe(gauges, [0.5, 1.5])  # two values: insufficient data, the configured method has no value
    assert registry.get_sample_value("qstreams_drift_verdict", LABELS) == -1.0
    assert registry.get_sample_value("qstreams_drift_window_records", {"contract": "c", "schema": "t"}) == 2.0


def test_the_report_of_such_a_field_names_its_method_without_a_metric() -> None:
    cur = profile_frame(pl.DataFrame({"x": [0.5]}), SPEC)
    f = compare(REF, cur, edges={"x": SPEC.fields[0].edges}, overrides={"x": {"method": "psi"}}).field("x")
    assert f.verdict is Verdict.INSUFFICIENT_DATA and f.metrics == ()
