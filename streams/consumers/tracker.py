"""Aggregate quality events into what a person (or a policy) acts on.

:class:`EventTracker` is pure: feed it decoded CloudEvents with :meth:`EventTracker.add`
and read totals per contract and outcome, the rules failing most, the latest
events, and :class:`Signal` records — one per event that says something is wrong,
with the time window of the records it is about. Matching signals to a time span
is how the demo proves each scheduled incident was detected, and how response
policies will decide what to do. ``model.performance`` events (labels joined to predictions) are folded per
model version into :class:`RealizedPerformance` (:attr:`EventTracker.performance`).

The tracker never raises on an event's data: it is fed what a topic holds, and a field of the wrong type
(another producer, a newer version of a type) counts as absent (0, empty). Its memory is bounded for a
consumer that runs for weeks: the ids kept for de-duplication (``remember``), the signals (``max_signals``,
the oldest dropped first) and the lifecycle events (``max_lifecycle``). An event whose ``window`` cannot be read
is placed at the time it was received (else now) but does not advance the ``*_through`` marks: they say which
windows were judged, and a garbled event judged none.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.events.types import EventType

__all__ = ["OUTCOMES", "EventTracker", "RealizedPerformance", "Signal"]

OUTCOMES = ("valid", "quarantined", "dead_lettered")


@dataclass(frozen=True, slots=True)
class Signal:
    """Something a quality event reported as wrong, located in time (record timestamps)."""

    #: violation | dead_letter | schema_drift | distribution_drift | confidence | model_version | performance
    kind: str
    contract: str  # id@version
    topic: str
    start: dt.datetime
    end: dt.datetime
    severity: str
    detail: str
    count: int
    fields: tuple[str, ...] = ()
    received: dt.datetime | None = None  # when the event reached this consumer
    #: measured values behind the signal, e.g. a confidence signal's mean confidence and low-confidence share
    measures: tuple[tuple[str, float], ...] = ()

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start <= end and self.end >= start


@dataclass
class RealizedPerformance:
    """One model version's ``model.performance`` events added up: windows judged, predictions joined to a label
    and how many of them were right, predictions left without a label, labels left without a prediction (the
    latter under model version ``""``: an orphan label has no prediction, hence no version)."""

    windows: int = 0
    labelled: int = 0
    correct: int = 0  # true positives + true negatives
    unmatched: int = 0
    orphans: int = 0

    @property
    def accuracy(self) -> float | None:
        """Realized accuracy over every labelled prediction of the windows (None before the first label)."""
        return self.correct / self.labelled if self.labelled else None

    def add(self, data: Mapping[str, Any]) -> None:
        confusion = _map(data.get("confusion"))
        self.windows += 1
        self.labelled += _int(data.get("count"))
        self.correct += _int(confusion.get("tp")) + _int(confusion.get("tn"))
        self.unmatched += _int(data.get("unmatched_predictions"))
        self.orphans += _int(data.get("orphan_labels"))


@dataclass
class EventTracker:
    """Running aggregates of the quality-event stream."""

    latest_size: int = 12  # the latest events worth reading: clean batch summaries are only counted
    #: contract -> outcome -> records, from window summaries (final, per event-time window) and from batch
    #: summaries (running, per batch; only with ``STREAMS_BATCH_EVENTS=true``)
    window_outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    batch_outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    #: (contract, rule, severity) -> failing rows, from window-scope and from batch-scope ``rule.violation`` events
    #: (with ``STREAMS_BATCH_EVENTS=true`` a worker with stream time publishes both: see :attr:`rule_failures`)
    window_rule_failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    batch_rule_failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: the latest ``max_signals`` signals, oldest first (older ones are dropped: bounded memory)
    signals: deque[Signal] = field(default_factory=deque)
    #: the latest ``max_lifecycle`` lifecycle events' data, oldest first
    lifecycle: deque[dict[str, Any]] = field(default_factory=deque)
    max_signals: int = 100_000
    max_lifecycle: int = 1_000
    seen_ids: set[str] = field(default_factory=set)
    remember: int = 200_000  # event ids kept for de-duplication (a bounded window of the latest)
    _order: deque[str] = field(default_factory=deque, repr=False)
    duplicates: int = 0
    events: int = 0
    windows: int = 0  # window summaries seen
    #: end of the newest window judged for distribution drift (None before the first drift event)
    drift_through: dt.datetime | None = None
    #: end of the newest window judged for prediction confidence (None before the first confidence event)
    confidence_through: dt.datetime | None = None
    #: model version -> windows judged for prediction confidence, and how many of them drifted
    confidence_windows: Counter[str] = field(default_factory=Counter)
    confidence_alarms: Counter[str] = field(default_factory=Counter)
    #: model version -> its realized performance (``model.performance`` events; ``""``: orphan labels)
    performance: dict[str, RealizedPerformance] = field(default_factory=dict)
    #: end of the newest window of prediction time with realized performance (None before the first)
    performance_through: dt.datetime | None = None
    latest: deque[tuple[dt.datetime, str, str, str, str]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.signals = deque(self.signals, maxlen=max(self.max_signals, 0))
        self.lifecycle = deque(self.lifecycle, maxlen=max(self.max_lifecycle, 0))

    def add(
        self,
        event_type: str,
        event_id: str,
        data: Mapping[str, Any],
        severity: str | None = None,
        received: dt.datetime | None = None,
    ) -> None:
        """Fold one event in; replays (same id) are counted once. Never raises on ``data`` (see the module doc)."""
        if event_id in self.seen_ids:
            self.duplicates += 1
            return
        self.seen_ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.remember:  # bounded memory: replays are recognised within the last ids
            self.seen_ids.discard(self._order.popleft())
        self.events += 1
        data = _map(data)
        contract = _ref(data)
        topic = str(data.get("topic", ""))
        start, end, timed = _window(data, received)
        summary = ""
        if event_type == EventType.BATCH_SUMMARY:
            counts = {str(k): _int(v) for k, v in _map(data.get("counts")).items()}
            bucket = self.batch_outcomes.setdefault(contract, Counter())
            for outcome, n in counts.items():
                bucket[outcome] += n
            dead = counts.get("dead_lettered", 0)
            if dead:
                self.signals.append(
                    Signal("dead_letter", contract, topic, start, end, "error", "undecodable", dead, (), received)
                )
            if not dead and not counts.get("quarantined", 0):
                return  # a clean batch: counted above, not news
            summary = ", ".join(f"{k} {v}" for k, v in counts.items())
        elif event_type == EventType.RULE_VIOLATION:
            rule = _map(data.get("rule"))
            name, sev = str(rule.get("name", "?")), str(rule.get("severity", severity or "error"))
            failures = _int(data.get("failures"))
            scoped = self.window_rule_failures if data.get("scope") == "window" else self.batch_rule_failures
            scoped[(contract, name, sev)] += failures
            column = rule.get("column")
            self.signals.append(
                Signal(
                    "violation",
                    contract,
                    topic,
                    start,
                    end,
                    sev,
                    name,
                    failures,
                    (str(column),) if column else (),
                    received,
                )
            )
            summary = f"{name}: {failures} failing rows ({sev})"
        elif event_type == EventType.SCHEMA_DRIFT:
            parts = []
            for key in ("unknown_fields", "missing_fields", "type_mismatches"):
                fields = {str(k): v for k, v in _map(data.get(key)).items()}
                if fields:
                    parts.append(f"{key.replace('_', ' ')}: {', '.join(sorted(fields))}")
                    self.signals.append(
                        Signal(
                            "schema_drift",
                            contract,
                            topic,
                            start,
                            end,
                            "warning",
                            key,
                            sum(_int(v) for v in fields.values()),
                            tuple(sorted(fields)),
                            received,
                        )
                    )
            summary = "; ".join(parts)
        elif event_type == EventType.DISTRIBUTION_DRIFT:
            fields_ = map(_map, _seq(data.get("fields")))
            drifted = [str(f["field"]) for f in fields_ if f.get("verdict") == "drift" and f.get("field") is not None]
            records = _int(data.get("records"))
            for name in drifted:
                self.signals.append(
                    Signal("distribution_drift", contract, topic, start, end, "warning", name, records, (name,),
                           received)
                )  # fmt: skip
            if timed:
                self.drift_through = end if self.drift_through is None else max(self.drift_through, end)
            summary = f"drifted: {', '.join(drifted)}" if drifted else f"no drift ({records} records)"
        elif event_type == EventType.PREDICTION_CONFIDENCE:
            summary = self._confidence(data, contract, topic, start, end, severity, received, timed)
        elif event_type == EventType.MODEL_PERFORMANCE:
            summary = self._performance(data, contract, topic, start, end, severity, received, timed)
        elif event_type == EventType.WINDOW_SUMMARY:
            self.windows += 1
            bucket = self.window_outcomes.setdefault(contract, Counter())
            for outcome in OUTCOMES:
                bucket[outcome] += _int(data.get(outcome))
            dead = _int(data.get("dead_lettered"))
            if dead:
                self.signals.append(
                    Signal("dead_letter", contract, topic, start, end, "error", "undecodable", dead, (), received)
                )
            summary = ", ".join(f"{k} {data.get(k, 0)}" for k in ("records", *OUTCOMES, "late"))
        elif event_type == EventType.WORKER_LIFECYCLE:
            self.lifecycle.append(dict(data))
            summary = str(data.get("phase", ""))
        short = event_type.rsplit(".", 2)[-2] if event_type.count(".") >= 2 else event_type
        self.latest.appendleft((end, short, contract, severity or "", summary))
        while len(self.latest) > self.latest_size:
            self.latest.pop()

    def _confidence(
        self,
        data: Mapping[str, Any],
        contract: str,
        topic: str,
        start: dt.datetime,
        end: dt.datetime,
        severity: str | None,
        received: dt.datetime | None,
        timed: bool = True,
    ) -> str:
        """Fold one ``prediction.confidence`` event (one model version in one window): a ``confidence`` signal
        when its predictions drifted from the reference's (``fields``: the metrics that fired), a
        ``model_version`` signal when the version is new to the reference (whatever its verdict)."""
        version = str(data.get("model_version", ""))
        verdict = str(data.get("verdict", ""))
        count = _int(data.get("count"))
        measures = tuple(
            (key, float(data[key]))
            for key in ("mean_confidence", "low_confidence_share", "expected_accuracy")
            if _finite(data.get(key))
        )
        new = bool(data.get("new_version"))
        if new:
            self.signals.append(
                Signal("model_version", contract, topic, start, end, "info", version, count, (), received, measures)
            )
        fired = tuple(
            str(m.get("metric")) for m in _seq(data.get("metrics")) if isinstance(m, Mapping) and m.get("drifted")
        )
        self.confidence_windows[version] += 1
        if verdict == "drift":
            self.confidence_alarms[version] += 1
            self.signals.append(
                Signal("confidence", contract, topic, start, end, severity or "warning", version, count, fired,
                       received, measures)
            )  # fmt: skip
        if timed:
            self.confidence_through = end if self.confidence_through is None else max(self.confidence_through, end)
        shown = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in measures[:2])
        what = f"drift ({', '.join(fired)})" if verdict == "drift" else verdict
        return f"model {version}{' (new)' if new else ''}: {what}; {shown}"

    def _performance(
        self,
        data: Mapping[str, Any],
        contract: str,
        topic: str,
        start: dt.datetime,
        end: dt.datetime,
        severity: str | None,
        received: dt.datetime | None,
        timed: bool = True,
    ) -> str:
        """Fold one ``model.performance`` event (one model version in one window of prediction time) into
        :attr:`performance`, and a ``performance`` signal (``measures``: accuracy when defined, labelled,
        correct, unmatched, orphans)."""
        version = str(data.get("model_version", ""))
        tally = RealizedPerformance()
        tally.add(data)
        self.performance.setdefault(version, RealizedPerformance()).add(data)
        measures = tuple(
            (k, float(v))
            for k, v in (("accuracy", tally.accuracy), ("labelled", tally.labelled), ("correct", tally.correct),
                         ("unmatched", tally.unmatched), ("orphans", tally.orphans))
            if v is not None
        )  # fmt: skip
        self.signals.append(
            Signal("performance", contract, topic, start, end, severity or "ok", version, tally.labelled, (),
                   received, measures)
        )  # fmt: skip
        if timed:
            self.performance_through = end if self.performance_through is None else max(self.performance_through, end)
        who = f"model {version}" if version else "labels without a prediction"
        shown = f"accuracy {tally.accuracy:.1%} of {tally.labelled}" if tally.accuracy is not None else "no label"
        return f"{who}: {shown}, {tally.unmatched} unmatched, {tally.orphans} orphan labels"

    @property
    def outcomes(self) -> dict[str, Counter[str]]:
        """Records per contract and outcome: a contract's window summaries when it has any (the stream's verdict),
        else its batch summaries' running counts (a worker with stream time and ``STREAMS_BATCH_EVENTS=true``
        publishes both, for the same records: adding them up counted every record twice)."""
        return {c: n for c, n in self.batch_outcomes.items() if c not in self._windowed()} | self.window_outcomes

    @property
    def rule_failures(self) -> Counter[tuple[str, str, str]]:
        """Failing rows per (contract, rule, severity): a contract's window-scope violations when it is judged per
        window, else its batch-scope ones (both describe the same rows; adding them up counted them twice)."""
        windowed = self._windowed()
        out = Counter({k: n for k, n in self.batch_rule_failures.items() if k[0] not in windowed})
        out.update(self.window_rule_failures)
        return out

    def _windowed(self) -> set[str]:
        """The contracts (id@version) judged per event-time window: a window summary or violation was seen."""
        return set(self.window_outcomes) | {c for c, _, _ in self.window_rule_failures}

    def totals(self) -> Counter[str]:
        """Records per outcome over every contract (see :attr:`outcomes`)."""
        out: Counter[str] = Counter()
        for c in self.outcomes.values():
            out.update(c)
        return out

    def top_rules(self, n: int = 8) -> list[tuple[tuple[str, str, str], int]]:
        return self.rule_failures.most_common(n)

    def signals_between(self, start: dt.datetime, end: dt.datetime, kinds: Iterable[str] | None = None) -> list[Signal]:
        wanted = set(kinds) if kinds is not None else None
        return [s for s in self.signals if s.overlaps(start, end) and (wanted is None or s.kind in wanted)]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> int:
    """A count: a finite, non-negative number (rounded down); anything else (null, text, NaN, negative) is 0."""
    return int(value) if _finite(value) and value > 0 else 0


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list[Any] | tuple[Any, ...]:
    return value if isinstance(value, (list, tuple)) else ()


def _ref(data: Mapping[str, Any]) -> str:
    c = data.get("contract") or {}
    if isinstance(c, Mapping):
        return f"{c.get('id', '?')}@{c.get('version', '?')}"
    return str(c)


def _window(data: Mapping[str, Any], received: dt.datetime | None) -> tuple[dt.datetime, dt.datetime, bool]:
    """``(start, end, timed)``: the event's window; when it cannot be read, the time it was received (else now)
    for both and ``timed`` False."""
    w = _map(data.get("window"))
    start, end = _ts(w.get("start")), _ts(w.get("end"))
    if start is not None and end is not None and start <= end:
        return start, end, True
    at = received or dt.datetime.now(dt.UTC)
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return at, at, False


def _ts(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None
