"""One window's ``window.summary`` events of several contract texts pooled into one observation.

After a contract upgrade, or during a rolling one (or a rolling restart on a contract edited without a new
version), a window gets one summary per contract text (version and sha256) that counted records of it, each
judged by that text (``docs/stream-time.md``, "Contract versions"). Taken one by one, the first would be the
window's and every other a replay: the records the other texts judged never reached a policy. The workers' summaries
name every text their window is published for (``contract_versions``); when that list names more than one,
:class:`ContractPool` keeps the window's summaries, per (contract, schema object), until every named text is in,
then gives the pooled observation (judged once, as any window). A summary of a later window closes the open one
with what it has (a summary that never came: a fallback, one window behind). A summary that names one text, or
none (older workers), is judged as it is, as before. A summary of an earlier window than the open one (a replay,
a late duplicate) changes nothing; one of a text already in replaces it. A window's summaries after it closed (a
re-publication) open it again: its pooled observation is then a replay to the policies.

Pooling is exact, never a mean of rates:

* ``records``, ``quarantined``, ``dead_lettered``, ``late``: summed; ``freshness.seconds``: the smallest (the
  freshest text's newest record);
* per rule: ``failures`` summed; ``failure_rate`` the summed failures over the summed ``rows`` of the texts that
  have the rule, when each text's rate is its failures over its rows (a row rule); ``0.0`` when every text's is
  ``0.0`` by the engine's convention (a dataset metric: ``rowCount``, SQL, whose failures are 0 or 1); no value
  otherwise (a rule whose denominator changed between texts). A rule of one text only keeps that text's outcome;
* per rule, ``passed`` only when it passed in every text that has it: each text judged its own records by its own
  threshold (which the events name as text only), and a threshold such as ``rowCount`` or a SQL aggregate cannot be
  judged again from the summaries' figures. The severity is the highest among the texts where it failed (any, when
  it passed): ``window.failed`` holds when an error-severity rule failed under any text;
* ``schema.drift``: the pooled window is clear (every count 0) only when every text's summary says so.

The pool is part of the agent's state (one compacted record per (contract, schema object)), so a restart neither
loses an open window nor judges one twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.events.types import iso_utc, parse_utc, to_utc
from streams.policies.metrics import Observation, RuleOutcome

__all__ = ["ContractPool", "contract_texts"]

TextKey = tuple[str, str]  # (contract, schema object)
_RANK = {"info": 0, "warning": 1, "error": 2}


def contract_texts(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``version@sha256`` of every text a summary's window is published for (empty: older workers)."""
    texts = data.get("contract_versions")
    if not isinstance(texts, list):
        return ()
    named = {f"{t.get('version')}@{t.get('sha256')}" if isinstance(t, Mapping) else str(t) for t in texts}
    return tuple(sorted(named))


def _text_of(data: Mapping[str, Any]) -> str:
    contract = data["contract"]
    return f"{contract.get('version') or ''}@{contract.get('sha256') or ''}"


@dataclass
class _Text:
    """What pooling needs of one text's summary."""

    version: str
    records: int
    rows: int
    quarantined: int
    dead_lettered: int
    late: int
    freshness: float | None
    drifted: bool | None  # the summary's schema_drifted (None: not said)
    rules: dict[str, RuleOutcome]

    @classmethod
    def of(cls, obs: Observation, data: Mapping[str, Any]) -> _Text:
        rows = data.get("rows")
        drifted = data.get("schema_drifted")
        return cls(
            obs.contract_version, obs.records, obs.records - obs.dead_lettered if rows is None else int(rows),
            obs.quarantined, obs.dead_lettered, obs.late, obs.metrics.get("freshness.seconds"),
            drifted if isinstance(drifted, bool) else None, dict(obs.rules),
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        rules = {n: [r.failures, r.failure_rate, r.passed, r.severity] for n, r in self.rules.items()}
        return {"version": self.version, "records": self.records, "rows": self.rows, "quarantined": self.quarantined,
                "dead_lettered": self.dead_lettered, "late": self.late, "freshness": self.freshness,
                "drifted": self.drifted, "rules": rules}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Text:
        rules = {str(n): RuleOutcome(int(f), None if r is None else float(r), bool(p), str(s))
                 for n, (f, r, p, s) in d["rules"].items()}  # fmt: skip
        records, rows, quarantined, dead, late = (int(d[k]) for k in ("records", "rows", "quarantined",
                                                                       "dead_lettered", "late"))  # fmt: skip
        fresh, drifted = d.get("freshness"), d.get("drifted")
        return cls(str(d["version"]), records, rows, quarantined, dead, late, None if fresh is None else float(fresh),
                   drifted if isinstance(drifted, bool) else None, rules)  # fmt: skip


@dataclass
class _Window:
    start: datetime
    end: datetime
    expected: set[str]
    texts: dict[str, _Text] = field(default_factory=dict)
    last: str = ""  # the text taken last: its version is the pooled observation's

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso_utc(self.start), "end": iso_utc(self.end), "expected": sorted(self.expected),
                "last": self.last, "texts": {k: t.as_dict() for k, t in sorted(self.texts.items())}}  # fmt: skip


def _per_row(rows: int, outcome: RuleOutcome) -> bool:
    """The rule's rate on a text is its failures over its rows (a row rule)."""
    rate = outcome.failure_rate
    if rate is None:
        return False
    if not rows:
        return outcome.failures == 0 and rate == 0.0
    return math.isclose(rate, outcome.failures / rows, rel_tol=1e-9, abs_tol=1e-12)


def _pooled_rule(having: Sequence[tuple[int, RuleOutcome]]) -> RuleOutcome:
    """One rule's outcome over the texts that have it: ``(rows, outcome)`` each (see the module docstring)."""
    if len(having) == 1:
        return having[0][1]
    outcomes = [o for _, o in having]
    failures = sum(o.failures for o in outcomes)
    rate: float | None = None
    if all(_per_row(rows, o) for rows, o in having):
        total = sum(rows for rows, _ in having)
        rate = failures / total if total else 0.0
    elif all(o.failure_rate == 0.0 for o in outcomes):
        rate = 0.0
    failed = [o for o in outcomes if not o.passed]
    severity = max((o.severity for o in failed or outcomes), key=lambda s: _RANK.get(s, 2))
    return RuleOutcome(failures, rate, not failed, severity)


def _pooled(key: TextKey, w: _Window) -> tuple[Observation, bool]:
    """The pooled observation of a window's texts, and whether every text said its schema did not drift."""
    texts = [t for _, t in sorted(w.texts.items())]
    names = sorted({n for t in texts for n in t.rules})
    rules = {n: _pooled_rule([(t.rows, t.rules[n]) for t in texts if n in t.rules]) for n in names}
    fresh = [t.freshness for t in texts if t.freshness is not None]
    obs = Observation(
        key[0], key[1], w.start, w.end, w.texts[w.last].version if w.last in w.texts else texts[-1].version,
        records=sum(t.records for t in texts), quarantined=sum(t.quarantined for t in texts),
        dead_lettered=sum(t.dead_lettered for t in texts), late=sum(t.late for t in texts), rules=rules,
        metrics={"freshness.seconds": min(fresh)} if fresh else {}, source="window.summary",
    )  # fmt: skip
    return obs, all(t.drifted is False for t in texts)


@dataclass
class ContractPool:
    """The open window of each (contract, schema object) whose summaries are pooled; see the module docstring."""

    open: dict[TextKey, _Window] = field(default_factory=dict)

    def take(self, obs: Observation, data: Mapping[str, Any]) -> list[tuple[Observation, bool]]:
        """The observations to judge for one ``window.summary`` (``obs`` read from ``data``), each with whether its
        window's schema is clear: a pooled window it closes (an earlier one), then the summary itself when it is
        not pooled, or its window pooled once every named text is in."""
        key = (obs.contract, obs.schema)
        start, end = to_utc(obs.window_start), to_utc(obs.window_end)
        closed = self.close_before(key, start)
        texts = contract_texts(data)
        if len(texts) < 2:
            return [*closed, (obs, data.get("schema_drifted") is False)]
        current = self.open.get(key)
        if current is not None and (start, end) != (current.start, current.end):
            return closed  # an earlier window than the open one (the open one ends after it starts): a replay
        if current is None:
            current = self.open[key] = _Window(start, end, set())
        own = _text_of(data)
        current.expected |= {*texts, own}
        current.texts[own] = _Text.of(obs, data)
        current.last = own
        if current.texts.keys() >= current.expected:
            closed.append(_pooled(key, self.open.pop(key)))
        return closed

    def close_before(self, key: TextKey, start: datetime) -> list[tuple[Observation, bool]]:
        """The pooled observation of the open window of ``key`` if it ends by ``start`` (a later window's summary
        came: the texts missing never will), which is then closed; nothing otherwise."""
        current = self.open.get(key)
        if current is None or current.end > to_utc(start):
            return []
        return [_pooled(key, self.open.pop(key))]

    def record(self, key: TextKey) -> dict[str, Any] | None:
        """The state record of one key (None: nothing open)."""
        current = self.open.get(key)
        return None if current is None else current.as_dict()

    def restore(self, key: TextKey, value: Mapping[str, Any] | None) -> None:
        if value is None:
            self.open.pop(key, None)
            return
        texts = {str(k): _Text.from_dict(t) for k, t in value["texts"].items()}
        self.open[key] = _Window(parse_utc(value["start"]), parse_utc(value["end"]),
                                 {str(x) for x in value["expected"]}, texts, str(value.get("last") or ""))  # fmt: skip
