"""Policies on ``confidence.*``, ``performance.*`` and ``schema_drift.records`` act: the agent reads the
``prediction.confidence``, ``model.performance`` and window ``schema.drift`` events (built here by the
project's own builders). Before, it read ``window.summary`` and ``distribution.drift`` only, and such
policies were accepted by lint and never fed a value: docs/policies.md's ``confidence-collapse`` →
``rollback-candidate`` example stayed silent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.errors import EventDataError
from streams.events import EventType, validate_event
from streams.events.builders import schema_drift
from streams.events.drift import prediction_confidence, window_drift_events
from streams.events.performance import model_performance
from streams.events.window import window_summary
from streams.pipeline.records import Message, OutRecord
from streams.policies.agent import PolicyAgent
from streams.policies.observe import confidence_observation_of
from streams.profiles.performance import PerformancePartial
from streams.profiles.prediction import ModelDrift
from streams.windows.finalize import SchemaDrift, WindowDrift, WindowVerdict
from streams.windows.partial import FieldTally, WindowKey

from .conftest import CONTRACT, POLICIES
from .summaries import T0, message
from .test_agent import EVENTS, STATE, decisions, events, settings

MODEL_POLICIES = """\
          - name: confidence-collapse
            when: {metric: confidence.mean_change, model_version: fraud-v4, below: -0.2}
            for: 2
            action: rollback-candidate
            model_version: fraud-v4
            resolve: {after: 2, above: -0.1}
          - name: confidence-low
            when: {metric: confidence.mean, below: 0.7}
            action: notify
          - name: accuracy-drop
            when: {metric: performance.accuracy, below: 0.7}
            for: 2
            action: retrain-candidate
            model_version: fraud-v3
            resolve: {after: 2, above: 0.8}
          - name: amount-schema-drift
            when: {metric: schema_drift.records, field: amount, above: 0}
            severity: error
            resolve: {after: 2}
          - name: small-windows
            when: {metric: window.records, below: 5000}
            for: 3
"""
MINUTE = 60_000
REF = 0.8  # the reference's mean confidence of every version


@pytest.fixture
def contract() -> Contract:
    return parse_contract(CONTRACT.replace(POLICIES, MODEL_POLICIES), path="models.yaml")


def verdict(contract: Contract, i: int, *, models: tuple[ModelDrift, ...] = (),
            schema: SchemaDrift | None = None) -> WindowVerdict:  # fmt: skip
    """The verdict on minute ``i`` from T0: 1000 records, no rule checked, the given drift."""
    so = contract.schemas[0]
    start = int(T0.timestamp() * 1000) + i * MINUTE
    key = WindowKey(contract.id, contract.version, so.name, so.topic, start, start + MINUTE)
    drift = None
    if models:  # prediction_confidence reads only the models and the reference's identity
        drift = WindowDrift(cast(Any, None), cast(Any, None), models, "0" * 64, 5000, 0.5)
    return WindowVerdict(key, contract.sha256, 1000, 1000, 1000, 0, 0, 0, 0, (), {0: ((0, 999),)}, drift, schema)


def model(version: str, count: int, mean: float) -> ModelDrift:
    drop = REF - mean
    metrics = (("mean_confidence_drop", drop, 0.05, drop >= 0.05),)
    return ModelDrift(version, "drift" if drop >= 0.05 else "ok", False, version, count, metrics, mean,
                      0.1, mean, (("fraud", 0.1),))  # fmt: skip


class Feed:
    """Records for the agent at increasing offsets of the quality-event topic (each event schema-checked).

    ``listed=False``: the events as older workers and joiners published them, without ``window_versions``."""

    def __init__(self, *, listed: bool = True) -> None:
        self.messages: list[Message] = []
        self.listed = listed

    def add(self, *built: Any) -> None:
        for event in built:
            if not self.listed and isinstance(data := event.get_data(), dict):
                data.pop("window_versions", None)
            validate_event(event)
            self.messages.append(message(event, EVENTS, len(self.messages)))


def run(contract: Contract, messages: list[Message]) -> tuple[PolicyAgent, list[OutRecord]]:
    agent = PolicyAgent([contract], settings(), EVENTS)
    return agent, [r for m in messages for r in agent.handle(m)]


# fraud-v4's mean confidence per minute (reference 0.8): -0.2 change is 0.64. Opens on minute 2 (minutes 1
# and 2 below), minute 4 is between the thresholds (not clear), minutes 5 and 6 are clear: resolves on 6.
V4_MEANS = [0.78, 0.5, 0.55, 0.6, 0.68, 0.76, 0.79]


def confidence_feed(contract: Contract) -> Feed:
    feed = Feed()
    for i, mean in enumerate(V4_MEANS):  # as a worker publishes a window: summary, then each version's event
        v = verdict(contract, i, models=(model("fraud-v3", 900, 0.9), model("fraud-v4", 100, mean)))
        feed.add(window_summary(contract, v, worker_id="w1"), *prediction_confidence(contract, v))
    return feed


def test_confidence_collapse_requests_a_rollback_once_and_resolves_with_hysteresis(contract: Contract) -> None:
    agent, out = run(contract, confidence_feed(contract).messages)
    assert [d for d in decisions(out) if d[1] == "confidence-collapse"] == [
        ("triggered", "confidence-collapse"), ("resolved", "confidence-collapse")]  # fmt: skip
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED)
                     and d["policy"]["name"] == "confidence-collapse")  # fmt: skip
    # fraud-v3's event of each minute (before fraud-v4's) and the summaries neither reset nor replay the streak
    assert [(w["start"][14:16], round(w["value"], 4)) for w in triggered["windows"]] == [
        ("01", round(0.5 / REF - 1, 4)), ("02", round(0.55 / REF - 1, 4))]  # fmt: skip
    resolved = next(d for t, d in events(out) if t == str(EventType.POLICY_RESOLVED)
                    and d["policy"]["name"] == "confidence-collapse")  # fmt: skip
    assert [w["start"][14:16] for w in resolved["windows"]] == ["05", "06"]
    commands = [d for t, d in events(out, "dq.commands") if t == str(EventType.POLICY_COMMAND)]
    assert [(c["command"], c["model_version"]) for c in commands] == [("rollback-candidate", "fraud-v4")]
    assert agent.book.states[f"{contract.id}#confidence-collapse"].replayed == 0
    # the summaries feed their own policies as before: three windows below 5000 records, no reset between them
    assert ("triggered", "small-windows") in decisions(out)
    assert agent.book.states[f"{contract.id}#small-windows"].triggered == 1


def all_versions_feed(*, listed: bool, contract: Contract) -> Feed:
    # fraud-v4 (100 predictions at 0.4) would pull a plain mean of the two versions to 0.65; weighted it is 0.85
    feed = Feed(listed=listed)
    for i, v3 in enumerate([0.9, 0.9, 0.6, 0.9]):
        v = verdict(contract, i, models=(model("fraud-v3", 900, v3), model("fraud-v4", 100, 0.4)))
        feed.add(*prediction_confidence(contract, v))
    return feed


def test_the_all_versions_confidence_weighs_each_version_by_its_predictions(contract: Contract) -> None:
    agent, out = run(contract, all_versions_feed(listed=True, contract=contract).messages)
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED)
                     and d["policy"]["name"] == "confidence-low")  # fmt: skip
    # minute 2 (0.9 * 0.6 + 0.1 * 0.4), judged as soon as fraud-v4's event, the last the window names, came
    assert [(w["start"][14:16], round(w["value"], 6)) for w in triggered["windows"]] == [("02", 0.58)]
    # so minute 3 (0.85) is judged too, without waiting for a later window: it resolves the incident
    assert [d for d in decisions(out) if d[1] == "confidence-low"] == [
        ("triggered", "confidence-low"), ("resolved", "confidence-low")]  # fmt: skip
    assert agent.book.states[f"{contract.id}#confidence-low"].last_end == T0 + timedelta(minutes=4)
    assert agent.pool.open == {}


def test_events_without_their_window_versions_are_pooled_one_window_behind(contract: Contract) -> None:
    # events of older workers name no versions: a window is whole only when a later window's event comes
    agent, out = run(contract, all_versions_feed(listed=False, contract=contract).messages)
    assert [d for d in decisions(out) if d[1] == "confidence-low"] == [("triggered", "confidence-low")]
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED)
                     and d["policy"]["name"] == "confidence-low")  # fmt: skip
    assert [(w["start"][14:16], round(w["value"], 6)) for w in triggered["windows"]] == [("02", 0.58)]
    state = agent.book.states[f"{contract.id}#confidence-low"]
    assert state.last_end == T0 + timedelta(minutes=3)  # minute 3 is still open: one window behind


def perf(tp: int, fp: int, tn: int, fn: int) -> PerformancePartial:
    return PerformancePartial(tp, fp, tn, fn, (0,) * 9 + (tp + fn,), (tn + fp,) + (0,) * 9, (0.0,) * 10)


# per minute: (fraud-v3's, fraud-v4's) confusion. The pooled accuracy (summed matrices) is what counts:
# minute 1 is 0.83 for all, although a plain mean of the versions' accuracies (0.89, 0.3) would be 0.59
PERF = [
    ((450, 0, 450, 0), (0, 0, 0, 0)),  # 1.0
    ((400, 50, 400, 50), (15, 35, 15, 35)),  # (800 + 30) / 1000 = 0.83
    ((300, 150, 300, 150), (15, 35, 15, 35)),  # 0.63
    ((300, 150, 300, 150), (50, 0, 50, 0)),  # 0.7: not below, not clear (above 0.8)
    ((320, 130, 320, 130), (50, 0, 50, 0)),  # 0.74: starts no new streak
    ((300, 150, 300, 150), (15, 35, 15, 35)),  # 0.63
    ((300, 150, 300, 150), (15, 35, 15, 35)),  # 0.63: opens (minutes 5 and 6)
    ((450, 0, 450, 0), (50, 0, 50, 0)),  # 1.0
    ((450, 0, 450, 0), (50, 0, 50, 0)),  # 1.0: resolves
    ((450, 0, 450, 0), (50, 0, 50, 0)),  # closes minute 8
]


VERSIONS = ("fraud-v3", "fraud-v4")


def performance_feed(contract: Contract, *, listed: bool = True) -> Feed:
    """Both versions' events of each minute of PERF, as the joiner publishes them (naming both versions)."""
    so, feed = contract.schemas[0], Feed(listed=listed)
    start = int(T0.timestamp() * 1000)
    for i, versions in enumerate(PERF):
        a = start + i * MINUTE
        feed.add(*(model_performance(contract, so.name, so.topic, a, a + MINUTE, version, perf(*c),
                                     labels_topic="labels", horizon_ms=3_600_000, window_versions=VERSIONS)
                   for version, c in zip(VERSIONS, versions, strict=True)))  # fmt: skip
    return feed


def test_a_realized_accuracy_drop_requests_a_retrain_and_resolves(contract: Contract) -> None:
    _, out = run(contract, performance_feed(contract).messages)
    assert decisions(out) == [("triggered", "accuracy-drop"), ("resolved", "accuracy-drop")]
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED))
    assert [(w["start"][14:16], w["value"]) for w in triggered["windows"]] == [("05", 0.63), ("06", 0.63)]
    resolved = next(d for t, d in events(out) if t == str(EventType.POLICY_RESOLVED))
    assert [w["start"][14:16] for w in resolved["windows"]] == ["07", "08"]
    commands = [d for t, d in events(out, "dq.commands") if t == str(EventType.POLICY_COMMAND)]
    assert [(c["command"], c["model_version"]) for c in commands] == [("retrain-candidate", "fraud-v3")]


@pytest.mark.parametrize("listed", [True, False])
def test_the_last_pooled_performance_window_is_judged_when_its_versions_are_in(contract: Contract,
                                                                               listed: bool) -> None:  # fmt: skip
    # the joiner publishes a window's model.performance events on its own schedule (no summary follows them):
    # the pooled window of minutes 5 and 6 (0.63 each, "for: 2") used to wait for minute 7's first event, so the
    # last window before the joiner's events stop was never judged. The events name their window's versions now
    messages = performance_feed(contract, listed=listed).messages[: 2 * 7]  # minutes 0-6, both versions each
    agent, out = run(contract, messages)
    if listed:
        assert decisions(out) == [("triggered", "accuracy-drop")]
        triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED))
        assert [(w["start"][14:16], w["value"]) for w in triggered["windows"]] == [("05", 0.63), ("06", 0.63)]
        assert agent.pool.open == {}
    else:  # an older joiner's events: minute 6 waits for a later window
        assert decisions(out) == []
        assert [key[0] for key in agent.pool.open] == ["model.performance"]


def test_the_open_window_of_the_pool_survives_a_restart(contract: Contract) -> None:
    messages = performance_feed(contract).messages
    _, whole = run(contract, messages)
    for cut in range(1, len(messages)):
        first, out = run(contract, messages[:cut])
        state = first.state_records(STATE)
        restarted = PolicyAgent([contract], settings(), EVENTS)
        restarted.restore(Message(STATE, 0, k, r.value, r.key) for k, r in enumerate(state))
        out += [r for m in messages for r in restarted.handle(m)]  # re-read from the beginning
        assert decisions(out) == decisions(whole), cut


def test_schema_drift_of_a_field_opens_and_clear_windows_resolve_it(contract: Contract) -> None:
    def drifted(missing: dict[str, int], unknown: dict[str, int]) -> SchemaDrift:
        tally = {n: FieldTally(k, ((0, 1),)) for n, k in missing.items()}
        return SchemaDrift({n: FieldTally(k, ((0, 2),)) for n, k in unknown.items()}, tally, {}, ())

    windows = [None, drifted({"amount": 5}, {}), drifted({}, {"extra": 7}), None, drifted({"amount": 1}, {})]
    feed = Feed()
    for i, sd in enumerate(windows):  # as the worker publishes them: the summary, then the window's drift events
        v = verdict(contract, i, schema=sd)
        feed.add(window_summary(contract, v, worker_id="w1"), *window_drift_events(contract, v, worker_id="w1"))
    agent, out = run(contract, feed.messages)
    mine = [d for d in decisions(out) if d[1] == "amount-schema-drift"]
    # minute 2 drifted on another field only (amount: 0, clear) and minute 3 had no schema.drift event at all
    # (its summary says so: clear), so the incident of minute 1 resolves on minute 3 and minute 4 opens another
    assert mine == [("triggered", "amount-schema-drift"), ("resolved", "amount-schema-drift"),
                    ("triggered", "amount-schema-drift")]  # fmt: skip
    resolved = next(d for t, d in events(out) if t == str(EventType.POLICY_RESOLVED))
    assert [(w["start"][14:16], w["value"]) for w in resolved["windows"]] == [("02", 0), ("03", 0)]
    assert agent.book.states[f"{contract.id}#amount-schema-drift"].replayed == 0


def test_a_batch_schema_drift_is_no_window_and_is_ignored(contract: Contract) -> None:
    so = contract.schemas[0]
    event = schema_drift(contract, so, source_topic=so.topic, offsets={0: (0, 9)}, window_start=T0,
                         window_end=T0 + timedelta(seconds=5), unknown_fields={}, missing_fields={"amount": 3},
                         type_mismatches={}, worker_id="w1")  # fmt: skip
    agent, out = run(contract, [message(event, EVENTS, 0)])
    assert out == [] and agent.skipped == 0
    assert f"{contract.id}#amount-schema-drift" not in agent.book.states


def test_a_malformed_confidence_event_is_a_data_error(contract: Contract) -> None:
    v = verdict(contract, 0, models=(model("fraud-v3", 900, 0.9),))
    data = dict(prediction_confidence(contract, v)[0].get_data() or {})
    del data["count"]
    with pytest.raises(EventDataError, match=r"prediction\.confidence event"):
        confidence_observation_of(data)


def test_the_last_pooled_confidence_window_is_judged_on_the_next_summary(contract: Contract) -> None:
    # red team 3: the pooled (all-versions) window was judged only when a later confidence event came; when the
    # model's predictions stop (or the stream's last window), minute 1 (0.9 * 0.6 + 0.1 * 0.4 = 0.58) was never
    # judged. The workers publish a window's confidence events right after its summary: minute 2's summary ends it
    feed = Feed()
    for i, v3 in enumerate([0.9, 0.6]):
        v = verdict(contract, i, models=(model("fraud-v3", 900, v3), model("fraud-v4", 100, 0.4)))
        feed.add(window_summary(contract, v, worker_id="w1"), *prediction_confidence(contract, v))
    feed.add(window_summary(contract, verdict(contract, 2), worker_id="w1"))  # no predictions in minute 2
    agent, out = run(contract, feed.messages)
    triggered = [d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED)
                 and d["policy"]["name"] == "confidence-low"]  # fmt: skip
    assert [[(w["start"][14:16], round(w["value"], 6)) for w in d["windows"]] for d in triggered] == [[("01", 0.58)]]
    assert agent.pool.open == {}
    # a confidence event of minute 1 again (a worker's re-publication) decides nothing
    again = verdict(contract, 1, models=(model("fraud-v3", 900, 0.6), model("fraud-v4", 100, 0.4)))
    extra = Feed()
    extra.add(*prediction_confidence(contract, again), window_summary(contract, verdict(contract, 3), worker_id="w1"))
    more = [r for i, m in enumerate(extra.messages)
            for r in agent.handle(Message(m.topic, 0, len(feed.messages) + i, m.value, m.key, m.headers))]  # fmt: skip
    assert decisions(more) == [] and agent.book.states[f"{contract.id}#confidence-low"].replayed == 1
