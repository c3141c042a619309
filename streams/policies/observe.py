"""Window events as policies read them: a ``window.summary`` event's data into an :class:`Observation`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.errors import EventDataError
from streams.events.types import to_utc
from streams.policies.metrics import Observation, RuleOutcome

__all__ = ["observation_of"]


def _time(text: Any) -> datetime:
    return to_utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def observation_of(data: Mapping[str, Any]) -> Observation:
    """The observation of one window summary; :class:`EventDataError` when the data is not one."""
    try:
        contract, window = data["contract"], data["window"]
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
            contract=str(contract["id"]),
            schema=str(data["schema"]),
            window_start=_time(window["start"]),
            window_end=_time(window["end"]),
            contract_version=str(contract.get("version") or ""),
            records=int(data["records"]),
            quarantined=int(data.get("quarantined") or 0),
            dead_lettered=int(data.get("dead_lettered") or 0),
            late=int(data.get("late") or 0),
            rules=rules,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDataError(f"A window.summary event's data is not one ({type(exc).__name__}: {exc}).") from exc
