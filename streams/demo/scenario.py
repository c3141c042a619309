"""The demo's scheduled incidents: what goes wrong upstream, when, and how we know it was caught.

An :class:`Incident` has a kind, a start and a duration relative to the start of
the run. Each kind has two halves registered in :data:`KINDS`:

* a *mutator*, applied by the producer to records produced while the incident is
  active (or a *garbage* source that replaces them with undecodable bytes), and
* a *detector*, which looks at the :class:`~streams.consumers.tracker.EventTracker`
  fed from the quality-event topic and says whether, and how, the incident was seen.

Distribution drift (``covariate_drift``) and prediction confidence (``confidence_collapse``) are judged
per window against reference profiles the demo builds at start; the collapse's evidence also cites the
new version's realized accuracy once its labels are joined (``model.performance``), but its detection
never waits for labels. Later capabilities (response policies) slot in as new kinds with their own
mutator and detector.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.consumers.tracker import EventTracker, Signal

__all__ = ["BASELINE_MODEL_VERSION", "KINDS", "Detection", "Incident", "IncidentKind", "default_schedule"]

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Detection:
    detected: bool
    evidence: str
    first_seen: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class IncidentKind:
    name: str
    description: str
    #: changes one record (returns the record to produce) — None for kinds that send garbage instead
    mutate: Callable[[Record, random.Random], Record] | None
    #: the share of records affected while active
    rate: float
    detect: Callable[[EventTracker, dt.datetime, dt.datetime, int], Detection]
    #: undecodable payloads to send instead of records (for kinds that break decoding)
    garbage: Callable[[int, random.Random], bytes] | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str
    start_s: float
    duration_s: float
    topic: str = "features"  # features | predictions

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def active(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s

    @property
    def spec(self) -> IncidentKind:
        return KINDS[self.kind]


# --- contract violations -----------------------------------------------------------------


def _violate(record: Record, rng: random.Random) -> Record:
    r = dict(record)
    fault = rng.randrange(5)
    if fault == 0:
        r["amount"] = -abs(float(r.get("amount") or 1.0))  # exclusiveMinimum 0
    elif fault == 1:
        r["merchant_country"] = "ZZ"  # not a known country
    elif fault == 2:
        r["device_trust_score"] = 1.0 + rng.random()  # probability above 1
    elif fault == 3:
        r["txn_count_1h"] = int(r.get("txn_count_24h") or 0) + 5  # cross-field velocity rule
    else:
        r["card_hash"] = None  # required
    return r


def _first(signals: list[Signal]) -> dt.datetime | None:
    times = [s.received for s in signals if s.received is not None]
    return min(times) if times else None


def _detect_violations(tracker: EventTracker, start: dt.datetime, end: dt.datetime, injected: int) -> Detection:
    hits = [s for s in tracker.signals_between(start, end, ["violation"]) if s.severity == "error"]
    if not hits:
        return Detection(False, f"no error-severity rule violation reported for {injected} bad records")
    rules = sorted({s.detail for s in hits})
    rows = sum(s.count for s in hits)
    return Detection(True, f"{len(rules)} rules fired ({', '.join(rules[:5])}); {rows} failing rows", _first(hits))


# --- undecodable messages ----------------------------------------------------------------

_GARBAGE: tuple[Callable[[random.Random], bytes], ...] = (
    lambda rng: b'{"event_id": "' + bytes(rng.choice(b"abcdef") for _ in range(8)),  # truncated JSON
    lambda rng: b"\xff\xfe\x00garbage" + rng.randbytes(8),  # not UTF-8
    lambda rng: b"[1, 2, 3]",  # JSON, not an object
    lambda rng: b"",  # empty
    lambda rng: b"amount=12.5;currency=EUR",  # not JSON
)


def _garbage(i: int, rng: random.Random) -> bytes:
    return _GARBAGE[i % len(_GARBAGE)](rng)


def _detect_dead_letters(tracker: EventTracker, start: dt.datetime, end: dt.datetime, injected: int) -> Detection:
    hits = tracker.signals_between(start, end, ["dead_letter"])
    n = sum(s.count for s in hits)
    if n == 0:
        return Detection(False, f"no dead-lettered records reported for {injected} undecodable messages")
    return Detection(True, f"{n} of {injected} undecodable messages dead-lettered", _first(hits))


# --- upstream schema change ----------------------------------------------------------------

NEW_FIELD = "merchant_geohash"
RETYPED_FIELD = "amount"


def _schema_change(record: Record, rng: random.Random) -> Record:
    r = dict(record)
    r[NEW_FIELD] = "".join(rng.choice("0123456789bcdefghjkmnpqrstuvwxyz") for _ in range(7))
    r[RETYPED_FIELD] = f"{float(r.get(RETYPED_FIELD) or 0):.2f}"  # a number starts arriving as a string
    return r


def _detect_schema_change(tracker: EventTracker, start: dt.datetime, end: dt.datetime, injected: int) -> Detection:
    hits = tracker.signals_between(start, end, ["schema_drift"])
    new = [s for s in hits if s.detail == "unknown_fields" and NEW_FIELD in s.fields]
    retyped = [s for s in hits if s.detail == "type_mismatches" and RETYPED_FIELD in s.fields]
    seen = []
    if new:
        seen.append(f"new field {NEW_FIELD!r}")
    if retyped:
        seen.append(f"type change of {RETYPED_FIELD!r}")
    if not (new and retyped):
        missing = "new field" if not new else "type change"
        return Detection(False, f"schema drift not fully reported ({missing} unseen); saw: {seen or 'nothing'}")
    return Detection(True, " and ".join(seen) + " reported as schema drift", _first(new + retyped))


# --- gradual covariate drift ---------------------------------------------------------------

DRIFT_MCC = "7995"  # betting: a merchant category the reference never saw (a valid code for the contract)
DRIFTED_FIELD = "merchant_category_code"  # no other incident touches it: the detector's evidence


class _GradualDrift:
    """Amounts slowly multiplied (up to 3x) and the merchant mix shifting toward :data:`DRIFT_MCC`, more with
    every record of the incident (records are clean otherwise: every rule still passes)."""

    ramp = 400  # records until the full shift

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, record: Record, rng: random.Random) -> Record:
        step = min(self.n / self.ramp, 1.0)
        self.n += 1
        r = dict(record)
        amount = r.get("amount")
        if isinstance(amount, (int, float)) and not isinstance(amount, bool):
            r["amount"] = round(float(amount) * (1.0 + 2.0 * step), 2)
        if rng.random() < 0.6 * step:
            r[DRIFTED_FIELD] = DRIFT_MCC
        return r


def _detect_covariate_drift(tracker: EventTracker, start: dt.datetime, end: dt.datetime, injected: int) -> Detection:
    hits = tracker.signals_between(start, end, ["distribution_drift"])
    mix = [s for s in hits if DRIFTED_FIELD in s.fields]
    if not mix:
        seen = sorted({f for s in hits for f in s.fields})
        return Detection(False, f"no distribution drift of {DRIFTED_FIELD!r} reported (drifted: {seen or 'none'})")
    topics = {s.topic for s in mix}  # the features stream's: the predictions' windows overlap in time
    fields = sorted({f for s in hits if s.topic in topics for f in s.fields})
    return Detection(True, f"distribution drift of {', '.join(fields)} in {len(mix)} window(s)", _first(mix))


# --- confidence collapse after a model rollout ------------------------------------------------

NEW_MODEL_VERSION = "3.3.0"
BASELINE_MODEL_VERSION = "3.2.1"  # the reference's predictions are all of it (streams.testing's generator)
#: the metrics of a confidence event that show a collapse (not merely another score or label mix)
COLLAPSE_METRICS = ("mean_confidence_drop", "low_confidence_rise")


def _collapse(record: Record, rng: random.Random) -> Record:
    """A new model version whose scores huddle around 0.5 (confidence max(s, 1 - s) below 0.6); the label
    still follows score and decision threshold, so every rule of the contract passes."""
    r = dict(record)
    score = round(min(max(0.5 + rng.gauss(0.0, 0.04), 0.0), 1.0), 6)
    threshold = r.get("decision_threshold")
    cut = float(threshold) if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) else 0.5
    r["model_version"] = NEW_MODEL_VERSION
    r["score"] = score
    r["predicted_label"] = "fraud" if score >= cut else "legit"
    return r


def _detect_confidence_collapse(
    tracker: EventTracker, start: dt.datetime, end: dt.datetime, injected: int
) -> Detection:
    rolled = [s for s in tracker.signals_between(start, end, ["model_version"]) if s.detail == NEW_MODEL_VERSION]
    hits = tracker.signals_between(start, end, ["confidence"])
    mine = [s for s in hits if s.detail == NEW_MODEL_VERSION and set(COLLAPSE_METRICS) & set(s.fields)]
    if not mine:
        others = sorted({s.detail for s in hits})
        seen = (
            f"new version {NEW_MODEL_VERSION} seen, its confidence not reported collapsed"
            if rolled
            else (f"no confidence event of model version {NEW_MODEL_VERSION}")
        )
        return Detection(False, f"{seen} (confidence drift of: {others or 'none'})")  # fmt: skip
    worst = min(mine, key=lambda s: dict(s.measures).get("mean_confidence", 1.0))
    m = dict(worst.measures)
    fired = sorted({f for s in mine for f in s.fields})
    shown = ""
    if "mean_confidence" in m and "low_confidence_share" in m:
        shown = f": mean confidence {m['mean_confidence']:.2f}, {m['low_confidence_share']:.0%} below threshold"
    return Detection(
        True,
        f"model {NEW_MODEL_VERSION} (new) collapsed in {len(mine)} window(s){shown} ({', '.join(fired)})"
        + _realized(tracker, start, end),
        _first(mine),
    )


def _realized(tracker: EventTracker, start: dt.datetime, end: dt.datetime) -> str:
    """The new version's realized accuracy in the windows of the incident, once labels made it known (and the
    baseline's over the run), for the evidence: "" while no prediction of it has been joined to a label."""
    perf = [s for s in tracker.signals_between(start, end, ["performance"]) if s.detail == NEW_MODEL_VERSION]
    labelled = sum(dict(s.measures).get("labelled", 0.0) for s in perf)
    if not labelled:
        return ""
    correct = sum(dict(s.measures).get("correct", 0.0) for s in perf)
    text = f"; realized accuracy {correct / labelled:.0%} on {int(labelled):,} labelled predictions"
    base = tracker.performance.get(BASELINE_MODEL_VERSION)
    if base is not None and base.accuracy is not None:
        text += f" (model {BASELINE_MODEL_VERSION}: {base.accuracy:.0%})"
    return text


KINDS: dict[str, IncidentKind] = {
    "violations": IncidentKind(
        "violations",
        "burst of contract violations (negative amounts, unknown countries, trust scores > 1, "
        "inconsistent velocity, missing card hash)",
        _violate,
        0.4,
        _detect_violations,
    ),
    "undecodable": IncidentKind(
        "undecodable",
        "run of undecodable messages (truncated JSON, not UTF-8, arrays, empty, plain text)",
        None,
        0.25,
        _detect_dead_letters,
        garbage=_garbage,
    ),
    "schema_change": IncidentKind(
        "schema_change",
        f"upstream schema change: new field {NEW_FIELD!r}, {RETYPED_FIELD!r} sent as a string",
        _schema_change,
        1.0,
        _detect_schema_change,
    ),
    "covariate_drift": IncidentKind(
        "covariate_drift",
        f"gradual covariate drift: amounts slowly multiplied, merchant mix shifting toward MCC {DRIFT_MCC}",
        _GradualDrift(),
        1.0,
        _detect_covariate_drift,
    ),
    "confidence_collapse": IncidentKind(
        "confidence_collapse",
        f"model {NEW_MODEL_VERSION} rolls out and its fraud scores collapse toward 0.5 (low confidence)",
        _collapse,
        1.0,
        _detect_confidence_collapse,
    ),
}


def default_schedule(duration_s: float) -> list[Incident]:
    """One incident of each kind, spread over the run with clean traffic between them."""
    d = max(duration_s, 30.0)
    length = max(4.0, min(10.0, d * 0.1))
    return [
        Incident("violations", round(d * 0.10, 1), length),
        Incident("undecodable", round(d * 0.28, 1), length),
        Incident("schema_change", round(d * 0.46, 1), length),
        Incident("confidence_collapse", round(d * 0.64, 1), length, topic="predictions"),
        Incident("covariate_drift", round(d * 0.82, 1), length),
    ]
