"""Window events as policies read them: the data of a ``window.summary``, ``distribution.drift``,
``schema.drift``, ``prediction.confidence`` or ``model.performance`` event into an :class:`Observation` (its
``source`` the event's short type: each policy is fed the events of its metric).

``prediction.confidence`` and ``model.performance`` report one model version each: their observation carries
that ``model_version`` and metrics keyed ``<metric>:<model_version>``; :func:`version_parts` is what
:mod:`streams.policies.pool` needs to pool the versions of a window into the all-versions metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from streams.errors import EventDataError
from streams.events.types import parse_utc
from streams.policies.metrics import Observation, RuleOutcome

__all__ = [
    "confidence_observation_of",
    "drift_observation_of",
    "no_schema_drift",
    "observation_of",
    "performance_observation_of",
    "schema_drift_observation_of",
    "version_parts",
]

#: ``distribution.drift`` metric names (``fields[].metrics[].metric``) as policy metrics.
_DRIFT_METRICS = {
    "psi": "drift.psi", "jensen_shannon": "drift.js", "wasserstein": "drift.wasserstein", "ks": "drift.ks",
    "chi2": "drift.chi2", "null_rate_change": "drift.null_rate_change",
    "share_outside_range": "drift.out_of_range_share",
}  # fmt: skip


def _num(value: Any) -> float:
    """A number of an event as a float; ``ValueError`` for NaN and infinities (JSON has none: such a value came as a
    string, ``"NaN"``, and compares false with every threshold, so a policy would take its window for a clear one)."""
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{value!r} is not a finite number")
    return x


def _count(value: Any) -> int:
    """A count of an event; ``ValueError`` unless a non-negative integer below 2**53 (what a JSON number holds
    exactly; sums of a few stay within 64 bits). ``1e300`` read as a 301-digit int cannot be written back by orjson:
    the policy's state record, or its decision, raised and stopped the agent on every restart."""
    n = int(value)
    if not 0 <= n < 2**53:
        raise ValueError(f"{value!r} is not a count (a non-negative integer below 2**53)")
    return n


def _window_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """What every window event names: the contract, its version, the schema object and the window."""
    contract, window = data["contract"], data["window"]
    return {
        "contract": str(contract["id"]), "schema": str(data["schema"]),
        "window_start": parse_utc(window["start"]), "window_end": parse_utc(window["end"]),
        "contract_version": str(contract.get("version") or ""),
    }  # fmt: skip


def _freshness(data: Mapping[str, Any]) -> dict[str, float]:
    """``freshness.seconds`` of a summary that states it (none for a summary of an older worker, or of a window
    without a record with an event time: the window does not say)."""
    value = data.get("freshness_seconds")
    return {} if value is None else {"freshness.seconds": _num(value)}


def observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one window summary; :class:`EventDataError` when the data is not one."""
    try:
        rules = {
            str(c["name"]): RuleOutcome(
                failures=_count(c.get("failures") or 0),
                failure_rate=None if c.get("failure_rate") is None else _num(c["failure_rate"]),
                passed=bool(c["passed"]),
                severity=str(c.get("severity") or "error"),
            )
            for c in data.get("checks") or ()
        }
        return Observation(
            **_window_of(data),
            records=_count(data["records"]),
            quarantined=_count(data.get("quarantined") or 0),
            dead_lettered=_count(data.get("dead_lettered") or 0),
            late=_count(data.get("late") or 0),
            rules=rules,
            metrics=_freshness(data),
            source="window.summary",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A window.summary event's data is not one ({type(exc).__name__}: {exc}).") from exc


def drift_observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one ``distribution.drift`` event: ``metrics`` keyed ``drift.<metric>:<field>``."""
    try:
        metrics = {
            f"{_DRIFT_METRICS[str(m['metric'])]}:{f['field']}": _num(m["value"])
            for f in data.get("fields") or ()
            for m in f.get("metrics") or ()
            if str(m["metric"]) in _DRIFT_METRICS and m.get("value") is not None
        }
        return Observation(
            **_window_of(data),
            records=_count(data.get("records") or 0),
            metrics=metrics,
            source="distribution.drift",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A distribution.drift event's data is not one ({type(exc).__name__}: {exc}).") from exc


def _opt(value: Any) -> float | None:
    return None if value is None else _num(value)


def _confidence_parts(data: Mapping[str, Any]) -> dict[str, float | None]:
    """A confidence event's figures: count, mean, low-confidence share, reference mean, expected accuracy.

    The reference mean is the mean plus the event's ``mean_confidence_drop`` (reference mean minus mean),
    None when the version was not judged against the reference (``insufficient_data``: no such metric).
    """
    mean = _opt(data["mean_confidence"])
    drop = next((_opt(m["value"]) for m in data.get("metrics") or () if m["metric"] == "mean_confidence_drop"), None)
    return {
        "n": float(_count(data["count"])), "mean": mean, "low": _opt(data["low_confidence_share"]),
        "ref": None if mean is None or drop is None else mean + drop, "expected": _opt(data["expected_accuracy"]),
    }  # fmt: skip


def _performance_parts(data: Mapping[str, Any]) -> dict[str, float | None]:
    c = data["confusion"]
    return {
        "n": float(_count(data["count"])), **{k: float(_count(c[k])) for k in ("tp", "fp", "tn", "fn")},
        "roc_auc": _opt(data["roc_auc"]), "calibration_error": _opt(data["calibration_error"]),
        "accuracy": _opt(data["accuracy"]), "precision": _opt(data["precision"]), "recall": _opt(data["recall"]),
    }  # fmt: skip


def version_parts(source: str, data: Mapping[str, Any]) -> dict[str, float | None]:
    """The figures of one model version's event that pooling needs (``source``: the event's short type)."""
    return _confidence_parts(data) if source == "prediction.confidence" else _performance_parts(data)


def confidence_metrics(parts: Mapping[str, float | None]) -> dict[str, float]:
    """``confidence.mean``, ``.low_share``, ``.mean_change`` and ``performance.estimated_accuracy`` of figures."""
    mean, ref = parts["mean"], parts["ref"]
    out = {"confidence.mean": mean, "confidence.low_share": parts["low"],
           "performance.estimated_accuracy": parts["expected"],
           "confidence.mean_change": None if mean is None or not ref else (mean - ref) / ref}  # fmt: skip
    return {k: v for k, v in out.items() if v is not None}


def performance_metrics(parts: Mapping[str, float | None]) -> dict[str, float]:
    names = ("accuracy", "precision", "recall", "roc_auc", "calibration_error")
    return {f"performance.{n}": float(v) for n in names if (v := parts.get(n)) is not None}


def _version_observation(source: str, data: Mapping[str, Any]) -> Observation:
    try:
        version = str(data["model_version"])
        parts = version_parts(source, data)
        figures = confidence_metrics(parts) if source == "prediction.confidence" else performance_metrics(parts)
        return Observation(
            **_window_of(data),
            records=int(parts["n"] or 0),
            metrics={f"{k}:{version}": v for k, v in figures.items()},
            source=source,
            model_version=version,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A {source} event's data is not one ({type(exc).__name__}: {exc}).") from exc


def confidence_observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one ``prediction.confidence`` event (one model version): ``confidence.mean:<v>``,
    ``confidence.low_share:<v>``, ``confidence.mean_change:<v>`` (when the version was judged against the
    reference) and ``performance.estimated_accuracy:<v>`` (the event's CBPE ``expected_accuracy``)."""
    return _version_observation("prediction.confidence", data)


def performance_observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one ``model.performance`` event (one model version): ``performance.<m>:<v>`` for
    accuracy, precision, recall, roc_auc and calibration_error (those the event has a value for)."""
    return _version_observation("model.performance", data)


def _schema_drift_counts(data: Mapping[str, Any], declared: Iterable[str]) -> dict[str, float]:
    per_field = dict.fromkeys(declared, 0)
    for part in ("unknown_fields", "missing_fields", "type_mismatches"):
        for name, n in (data.get(part) or {}).items():
            per_field[str(name)] = per_field.get(str(name), 0) + _count(n)
    out: dict[str, float] = {f"schema_drift.records:{f}": n for f, n in per_field.items()}
    out["schema_drift.records"] = max(per_field.values(), default=0)
    return out


def schema_drift_observation_of(data: Mapping[str, Any], declared: Iterable[str] = ()) -> Observation:
    """The observation of one window's ``schema.drift`` event: ``schema_drift.records:<field>`` is the records
    whose ``field`` was unknown, missing or mistyped (0 for a ``declared`` field the event does not name: it
    did not drift); ``schema_drift.records`` is the largest of them (the event counts records per field, not
    records with any drift: at least that many records drifted, exactly that many when one field did)."""
    try:
        if "records" not in data:
            raise KeyError("records (a batch's schema.drift, not a window's)")
        return Observation(
            **_window_of(data), records=_count(data["records"]), metrics=_schema_drift_counts(data, declared),
            source="schema.drift",
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A schema.drift event's data is not a window's ({type(exc).__name__}: {exc}).") from exc


def no_schema_drift(summary: Observation, declared: Iterable[str]) -> Observation:
    """The ``schema.drift`` observation of a window whose summary says its records carried exactly the
    declared fields (no ``schema.drift`` event follows it): every count 0."""
    return replace(summary, rules={}, metrics=_schema_drift_counts({}, declared), source="schema.drift")
