"""Drift, confidence and performance event data conform to their JSON Schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from streams.contracts.loader import load_contract
from streams.profiles.evidence import confidence_data, drift_data, performance_data
from streams.profiles.performance import performance_partials
from streams.profiles.prediction import compare_models, profile_models
from streams.profiles.profile import profile_frame
from tests.unit.profiles.drift_data import drift as run
from tests.unit.profiles.drift_data import sample, spec_from
from tests.unit.profiles.test_prediction_monitoring import SPEC, predictions

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "streams" / "events" / "schemas"
WINDOW = (datetime(2025, 3, 1, 12, 0, tzinfo=UTC), datetime(2025, 3, 1, 12, 1, tzinfo=UTC))
CONTRACT = load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml")


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:qstreams:schema:io.qualitystreams.{name.replace('_', '.')}.v1"
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_distribution_drift_data_conforms():
    ref = sample(5_000, np.random.default_rng(1))
    spec = spec_from(ref)
    report = run(spec, profile_frame(ref, spec), sample(2_000, np.random.default_rng(2), mean=110.0))
    report = replace(report, reference_sha256="ab" * 32)
    data = drift_data(report, CONTRACT, "predictions.card-fraud.v1", WINDOW)
    validator("distribution_drift").validate(data)
    assert data["drifted"] == ["x"] and data["verdicts"]["drift"] == 1
    assert data["window"] == {"start": "2025-03-01T12:00:00.000Z", "end": "2025-03-01T12:01:00.000Z"}
    tiny = replace(run(spec, profile_frame(ref, spec), sample(5, np.random.default_rng(3))), reference_sha256="c" * 64)
    validator("distribution_drift").validate(drift_data(tiny, CONTRACT, "t", WINDOW))


def test_confidence_and_performance_data_conform():
    rng = np.random.default_rng(4)
    reference = profile_models(predictions(5_000, rng), SPEC)
    current = predictions(2_000, rng, "3.3.0", a=8.0, b=9.0)
    (result,) = compare_models(reference, profile_models(current, SPEC))
    data = confidence_data(
        result, CONTRACT, "card_fraud_predictions", "t", WINDOW, reference_sha256="0" * 64, reference_rows=5_000,
        confidence_threshold=SPEC.confidence_threshold,
    )  # fmt: skip
    validator("prediction_confidence").validate(data)
    assert data["new_version"] and data["verdict"] == "drift"
    partial = performance_partials(current, SPEC, "actual", delay_seconds="delay")["3.3.0"]
    perf = performance_data(partial, "3.3.0", CONTRACT, "card_fraud_predictions", "t", WINDOW)
    validator("model_performance").validate(perf)
    assert perf["count"] == 2_000
    with pytest.raises(jsonschema.ValidationError):
        validator("model_performance").validate({**perf, "count": -1})
