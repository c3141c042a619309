"""The incident state machine: window observations in, ``triggered`` / ``resolved`` decisions out.

Pure: :func:`step` takes a policy, its state and one window's observation and returns the new
state and the decisions, nothing else. :class:`IncidentBook` keeps one state per policy (one
open incident per (contract, policy) at most) and serialises them for a compacted topic.

Per policy and schema object, windows are taken in event-time order:

* the condition must hold on ``for`` consecutive windows to open an incident (a window that does
  not hold, or has no value for the metric, starts the count again; so does a gap: a window that
  starts after the end of the last one taken, the windows in between never observed);
* an open incident resolves after ``resolve.after`` consecutive *clear* windows: below (or above)
  the resolve threshold when one is given (hysteresis), else where the condition does not hold; a
  window without a value is not clear (silence is not recovery);
* after a resolution, no new incident opens for ``cooldown`` (event time from the end of the
  resolving window, or of the last window taken for a manual resolution); windows that would have
  opened one meanwhile are counted as suppressed;
* an observation of a window that starts before the end of the last window taken is a **replay**
  (or a late duplicate) and changes nothing, so decisions happen exactly once per incident.

Ids are deterministic: an incident is named by (contract, policy, first window of its trigger
streak), and its events by (type, incident), so a consumer that rebuilt the state from a replay
would still produce the same ids.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from streams.errors import EventError
from streams.events.types import event_id, iso_utc, parse_utc, to_utc
from streams.policies.metrics import METRICS, Observation
from streams.policies.spec import Policy

__all__ = [
    "Decision",
    "DecisionKind",
    "IncidentBook",
    "PolicyState",
    "WindowValue",
    "incident_id",
    "resolve_manually",
    "step",
]

SNAPSHOT_VERSION = 1


class DecisionKind(enum.StrEnum):
    TRIGGERED = "triggered"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class WindowValue:
    """One window's value of a policy's metric (the evidence of a decision)."""

    start: datetime
    end: datetime
    value: float | bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso_utc(self.start), "end": iso_utc(self.end), "value": self.value}


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: str
    opened_at: datetime
    windows: tuple[WindowValue, ...]
    contract_version: str = ""


@dataclass(frozen=True, slots=True)
class PolicyState:
    last_end: datetime | None = None
    streak: tuple[WindowValue, ...] = ()  # consecutive windows where the condition held (at most `for`)
    clear: tuple[WindowValue, ...] = ()  # consecutive clear windows while an incident is open
    incident: OpenIncident | None = None
    cooldown_until: datetime | None = None
    triggered: int = 0
    resolved: int = 0
    suppressed: int = 0
    replayed: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """An incident opened or closed by a policy."""

    kind: DecisionKind
    incident_id: str
    policy: Policy
    contract_version: str
    window_start: datetime
    window_end: datetime
    opened_at: datetime
    windows: tuple[WindowValue, ...]  # the windows that triggered (or cleared) it
    how: str = "auto"  # resolved: auto | manual
    by: str | None = None


def incident_id(policy: Policy, first_window_start: datetime) -> str:
    """The id of an incident of ``policy`` whose trigger streak began with the window starting then."""
    return event_id("incident", policy.contract, policy.name, policy.schema, iso_utc(first_window_start))


def step(policy: Policy, state: PolicyState, obs: Observation) -> tuple[PolicyState, list[Decision]]:
    """Feed one window of ``policy``'s schema object; returns the new state and 0 or 1 decision."""
    if obs.contract != policy.contract or obs.schema != policy.schema:
        return state, []
    start, end = to_utc(obs.window_start), to_utc(obs.window_end)
    if state.last_end is not None and start < state.last_end:
        return replace(state, replayed=state.replayed + 1), []
    if state.last_end is not None and start > state.last_end:
        # a window is missing in between (none of its events came: no records, no value): the windows on either
        # side are not consecutive, so neither a trigger streak nor a run of clear windows spans the gap
        state = replace(state, streak=(), clear=())
    value = obs.value(policy.condition.metric, policy.condition.subject)
    here = WindowValue(start, end, value)
    state = replace(state, last_end=end)
    if state.incident is None:
        if policy.condition.holds(value) is not True:
            return replace(state, streak=()), []
        streak = (*state.streak, here)[-policy.windows :]
        if len(streak) < policy.windows:
            return replace(state, streak=streak), []
        if state.cooldown_until is not None and end < state.cooldown_until:
            return replace(state, streak=streak, suppressed=state.suppressed + 1), []
        incident = OpenIncident(incident_id(policy, streak[0].start), end, streak, obs.contract_version)
        decision = Decision(DecisionKind.TRIGGERED, incident.id, policy, obs.contract_version, start, end, end, streak)
        return replace(state, streak=(), clear=(), incident=incident, triggered=state.triggered + 1), [decision]
    if policy.clear(value) is not True:
        return replace(state, clear=()), []
    clear = (*state.clear, here)[-policy.resolve_after :]
    if len(clear) < policy.resolve_after:
        return replace(state, clear=clear), []
    return _resolve(policy, state, obs.contract_version or state.incident.contract_version, start, end, clear)


def _resolve(
    policy: Policy, state: PolicyState, version: str, start: datetime, end: datetime,
    windows: tuple[WindowValue, ...], how: str = "auto", by: str | None = None, cooldown_from: datetime | None = None,
) -> tuple[PolicyState, list[Decision]]:  # fmt: skip
    incident = state.incident
    assert incident is not None
    decision = Decision(
        DecisionKind.RESOLVED, incident.id, policy, version, start, end, incident.opened_at, windows, how, by
    )
    until = (end if cooldown_from is None else cooldown_from) + timedelta(seconds=policy.cooldown_seconds)
    return replace(state, incident=None, clear=(), streak=(), cooldown_until=until, resolved=state.resolved + 1), [
        decision
    ]


def resolve_manually(
    policy: Policy, state: PolicyState, incident: str, at: datetime, by: str
) -> tuple[PolicyState, list[Decision]]:
    """Close the open incident ``incident`` by hand (``qstreams incidents resolve ID``) at ``at`` (wall clock).
    The cooldown runs in the windows' clock, event time: it starts at the end of the last window the policy
    took (``at`` is another clock: with a backlog, hours ahead of the windows, the cooldown suppressed every
    window of those hours too). Resolving an incident that is not open (already resolved, a replayed command)
    changes nothing."""
    if state.incident is None or state.incident.id != incident:
        return state, []
    at = to_utc(at)
    reached = state.last_end or state.incident.opened_at
    return _resolve(policy, state, state.incident.contract_version, at, at, (), "manual", by, cooldown_from=reached)


# --- many policies, and the snapshot -------------------------------------------------------------------------


@dataclass
class IncidentBook:
    """The state of every policy, keyed ``<contract>#<policy>``; feed it observations in window order."""

    policies: tuple[Policy, ...]
    states: dict[str, PolicyState] = field(default_factory=dict)

    def observe(self, obs: Observation) -> list[Decision]:
        decisions: list[Decision] = []
        for policy in self.policies:
            if (policy.contract, policy.schema) != (obs.contract, obs.schema):
                continue
            if obs.source is not None and METRICS[policy.condition.metric].source != obs.source:
                continue  # another event of the window (a drift policy is not judged on the window summary)
            if not obs.concerns(policy.condition.metric, policy.condition.subject):
                continue  # another model version's event (or the pooled one)
            self.states[policy.key], out = step(policy, self.states.get(policy.key, PolicyState()), obs)
            decisions.extend(out)
        return decisions

    def resolve(self, incident: str, at: datetime, by: str) -> list[Decision]:
        for policy in self.policies:
            state = self.states.get(policy.key)
            if state is not None and state.incident is not None and state.incident.id == incident:
                self.states[policy.key], out = resolve_manually(policy, state, incident, at, by)
                return out
        return []

    def open_incidents(self) -> dict[str, str]:
        """``{policy key: incident id}`` of the incidents open now."""
        return {k: s.incident.id for k, s in self.states.items() if s.incident is not None}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """One JSON-ready record per policy key (the value of that key on a compacted topic)."""
        return {key: _state_dict(s) for key, s in sorted(self.states.items())}

    @classmethod
    def restore(cls, policies: Iterable[Policy], snapshot: Mapping[str, Mapping[str, Any]]) -> IncidentBook:
        """The book saved by :meth:`snapshot`; records of policies no longer declared are dropped."""
        policies = tuple(policies)
        known = {p.key for p in policies}
        return cls(policies, {k: _state_from(v) for k, v in snapshot.items() if k in known})


def _windows_out(ws: tuple[WindowValue, ...]) -> list[list[Any]]:
    return [[iso_utc(w.start), iso_utc(w.end), w.value] for w in ws]


def _windows_in(rows: Any) -> tuple[WindowValue, ...]:
    return tuple(WindowValue(parse_utc(a), parse_utc(b), v) for a, b, v in rows)


def _opt_time(value: datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def _state_dict(s: PolicyState) -> dict[str, Any]:
    incident = s.incident
    return {
        "v": SNAPSHOT_VERSION,
        "last_end": _opt_time(s.last_end),
        "streak": _windows_out(s.streak),
        "clear": _windows_out(s.clear),
        "incident": None
        if incident is None
        else {
            "id": incident.id,
            "opened_at": iso_utc(incident.opened_at),
            "windows": _windows_out(incident.windows),
            "contract_version": incident.contract_version,
        },
        "cooldown_until": _opt_time(s.cooldown_until),
        "counts": {"triggered": s.triggered, "resolved": s.resolved, "suppressed": s.suppressed,
                   "replayed": s.replayed},
    }  # fmt: skip


def _state_from(d: Mapping[str, Any]) -> PolicyState:
    if d.get("v") != SNAPSHOT_VERSION:
        raise EventError(
            f"A policy state record has version {d.get('v')!r}; this build reads version {SNAPSHOT_VERSION} "
            "(written by a newer agent?)."
        )
    inc = d.get("incident")
    counts = d.get("counts") or {}
    incident = None
    if inc:
        windows = _windows_in(inc["windows"])
        incident = OpenIncident(inc["id"], parse_utc(inc["opened_at"]), windows, inc.get("contract_version", ""))
    return PolicyState(
        last_end=parse_utc(d["last_end"]) if d.get("last_end") else None,
        streak=_windows_in(d.get("streak") or []),
        clear=_windows_in(d.get("clear") or []),
        incident=incident,
        cooldown_until=parse_utc(d["cooldown_until"]) if d.get("cooldown_until") else None,
        **{k: int(counts.get(k, 0)) for k in ("triggered", "resolved", "suppressed", "replayed")},
    )
