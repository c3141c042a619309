"""Window events as policies read them: a ``window.summary`` or ``distribution.drift`` event's data into an
:class:`Observation` (its ``source`` the event's short type: each policy is fed the events of its metric)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.errors import EventDataError
from streams.events.types import to_utc
from streams.policies.metrics import Observation, RuleOutcome

__all__ = ["drift_observation_of", "observation_of"]

#: ``distribution.drift`` metric names (``fields[].metrics[].metric``) as policy metrics.
_DRIFT_METRICS = {
    "psi": "drift.psi", "jensen_shannon": "drift.js", "wasserstein": "drift.wasserstein", "ks": "drift.ks",
    "chi2": "drift.chi2", "null_rate_change": "drift.null_rate_change",
    "share_outside_range": "drift.out_of_range_share",
}  # fmt: skip


def _time(text: Any) -> datetime:
    return to_utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def _window_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """What every window event names: the contract, its version, the schema object and the window."""
    contract, window = data["contract"], data["window"]
    return {
        "contract": str(contract["id"]), "schema": str(data["schema"]),
        "window_start": _time(window["start"]), "window_end": _time(window["end"]),
        "contract_version": str(contract.get("version") or ""),
    }  # fmt: skip


def observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one window summary; :class:`EventDataError` when the data is not one."""
    try:
        rules = {
            str(c["name"]): RuleOutcome(
                failures=int(c.get("failures") or 0),
                failure_rate=None if c.get("failure_rate") is None else float(c["failure_rate"]),
                passed=bool(c["passed"]),
                severity=str(c.get("severity") or "error"),
            )
            for c in data.get("checks") or ()
        }
        return Observation(
            **_window_of(data),
            records=int(data["records"]),
            quarantined=int(data.get("quarantined") or 0),
            dead_lettered=int(data.get("dead_lettered") or 0),
            late=int(data.get("late") or 0),
            rules=rules,
            source="window.summary",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A window.summary event's data is not one ({type(exc).__name__}: {exc}).") from exc


def drift_observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one ``distribution.drift`` event: ``metrics`` keyed ``drift.<metric>:<field>``."""
    try:
        metrics = {
            f"{_DRIFT_METRICS[str(m['metric'])]}:{f['field']}": float(m["value"])
            for f in data.get("fields") or ()
            for m in f.get("metrics") or ()
            if str(m["metric"]) in _DRIFT_METRICS and m.get("value") is not None
        }
        return Observation(
            **_window_of(data),
            records=int(data.get("records") or 0),
            metrics=metrics,
            source="distribution.drift",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A distribution.drift event's data is not one ({type(exc).__name__}: {exc}).") from exc
