"""Hand-made cases of the labels join with their exact outcome, bad records, an accuracy drop of one model
version, the gauges, and the labels binding's validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.errors import ContractError
from streams.events.codec import event_data, from_kafka, validate_event
from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.performance.telemetry import MAX_MODEL_VERSIONS, JoinCounters
from streams.pipeline.records import Message
from streams.profiles.performance import PerformancePartial, score_units
from streams.settings import Settings
from tests.unit.performance.scenario import (
    CONTRACT,
    HORIZON_MS,
    LABELS,
    PREDICTIONS,
    T0,
    WINDOW_MS,
    contract,
    expected,
    generate,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_joiner import Clock, close, events, make_joiner, run

S = 1000


class Feed:
    """Records one by one, with offsets per topic (one partition each)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.clock = Clock()
        spec = join_spec(contract(), Settings())
        self.joiner = PerformanceJoiner(spec, joiner_id="j", events_topic="ev", now=self.clock,
                                        counters=JoinCounters(registry))  # fmt: skip
        self.joiner.assign({PREDICTIONS: [0], LABELS: [0]})
        self.offsets = {PREDICTIONS: 0, LABELS: 0}
        self.out: list[Any] = []

    def send(self, topic: str, record: dict[str, Any] | bytes) -> None:
        value = record if isinstance(record, bytes) else orjson.dumps(record)
        self.out += self.joiner.handle(Message(topic, 0, self.offsets[topic], value, None, (), T0))
        self.offsets[topic] += 1

    def pred(self, pid: str, t_s: float, score: float, version: str = "A") -> None:
        self.send(PREDICTIONS, prediction_record(pid, T0 + int(t_s * S), version, score, score >= 0.5))

    def label(self, pid: str, t_s: float, actual: bool) -> None:
        self.send(LABELS, label_record(pid, T0 + int(t_s * S), actual))

    def finish(self) -> dict[tuple[int, str], dict[str, Any]]:
        return events(self.out + close(self.joiner, self.clock))


def test_label_before_prediction_after_horizon_duplicates_and_orphans() -> None:
    f = Feed()
    f.label("early", 12, True)  # arrives before its prediction: held, then matched
    f.pred("early", 10, 0.905)
    f.pred("late-label", 20, 0.105)
    f.pred("dup", 30, 0.805)
    f.label("dup", 40, False)  # the first label of an id counts ...
    f.label("dup", 41, True)  # ... a second one (even a different value) is a duplicate
    f.pred("dup", 30, 0.205)  # so is a second prediction
    f.label("nobody", 50, True)  # an orphan
    f.pred("never", 55, 0.605)  # never labelled: unmatched
    f.pred("p70", 70, 0.5)  # the next window
    f.label("late-label", 20 + HORIZON_MS / S + 1, False)  # one second past the horizon: unmatched + orphan
    got = f.finish()
    w0, w1 = T0, T0 + WINDOW_MS
    assert set(got) == {(w0, "A"), (w0, ""), (w1, "A"), (w0 + 5 * WINDOW_MS, "")}
    a = got[(w0, "A")]
    assert a["count"] == 2 and a["confusion"] == {"tp": 1, "fp": 1, "tn": 0, "fn": 0}
    assert a["unmatched_predictions"] == 2 and a["orphan_labels"] == 0  # late-label, never
    assert a["label_delay"] == {"count": 2, "mean_seconds": 6.0, "max_seconds": 10.0}
    assert got[(w0, "")]["orphan_labels"] == 1 and got[(w0, "")]["count"] == 0  # nobody
    assert got[(w0 + 5 * WINDOW_MS, "")]["orphan_labels"] == 1  # the label past the horizon, in its own window
    assert got[(w1, "A")]["unmatched_predictions"] == 1
    assert f.joiner.counters.counts == {"matched": 2, "duplicate": 2, "late": 0}


def test_a_record_of_a_final_window_is_late_counted_and_ignored() -> None:
    f = Feed()
    f.pred("a", 0, 0.9)
    f.label("a", 1, True)
    f.pred("far", 3600, 0.9)  # moves both watermarks ... (labels too:)
    f.label("far", 3601, True)
    assert [event_data(from_kafka(r.key, r.value, r.headers))["count"] for r in f.out] == [1]  # window 0 final
    f.pred("b", 5, 0.1)
    f.label("a", 2, False)
    assert f.joiner.counters.counts["late"] == 2
    got = f.finish()
    assert got[(T0, "A")]["count"] == 1  # published once, nothing added after


def test_bad_records_are_skipped_with_a_reason_never_raised() -> None:
    f = Feed()
    f.send(PREDICTIONS, b"not json")
    f.send(
        PREDICTIONS,
        {"model_version": "A", "score": 0.5, "predicted_label": "x", "predicted_at": "2024-06-01T00:00:00Z"},
    )
    f.send(PREDICTIONS, {**prediction_record("s", T0, "A", 0.5, True), "score": 1.5})
    f.send(PREDICTIONS, {**prediction_record("t", T0, "A", 0.5, True), "predicted_at": "yesterday"})
    f.send(LABELS, {"prediction_id": "u", "actual": None, "labelled_at": "2024-06-01T00:00:00Z"})
    f.send(LABELS, b"[1, 2]")
    assert f.joiner.counters.skipped == {("predictions", "undecodable"): 1, ("predictions", "no_prediction_id"): 1,
                                         ("predictions", "bad_score"): 1, ("predictions", "bad_time"): 1,
                                         ("labels", "bad_label"): 1, ("labels", "undecodable"): 1}  # fmt: skip
    assert f.joiner.offsets == {(PREDICTIONS, 0): 4, (LABELS, 0): 2}


def test_an_accuracy_drop_of_one_model_version_shows_in_its_events_and_gauges() -> None:
    registry = CollectorRegistry()
    data = generate(seed=7, n=600, noise={"A": 0.05, "B": 0.45}, delay_s=(0, 200), missing=0.0, orphans=0)
    clock = Clock()
    joiner = make_joiner(clock)
    joiner.counters = JoinCounters(registry)
    got = events(run(data.messages, joiner, clock) + close(joiner, clock))
    want = expected(data)

    def pooled(version: str, source: dict[tuple[int, str], dict[str, Any]]) -> float:
        cells = [d for (_, v), d in source.items() if v == version]
        return sum(d["confusion"]["tp"] + d["confusion"]["tn"] for d in cells) / sum(d["count"] for d in cells)

    assert pooled("A", got) == pooled("A", want) > 0.9
    assert pooled("B", got) == pooled("B", want) < 0.7  # the drop, detected
    for version in ("A", "B"):
        labels = {"contract": "urn:test:fraud-predictions", "schema": "predictions", "model_version": version}
        value = registry.get_sample_value("qstreams_model_accuracy", labels)
        final = [d for (s, v), d in sorted(got.items()) if v == version and d["accuracy"] is not None][-1]
        assert value == pytest.approx(final["accuracy"])


def test_gauges_keep_a_bounded_number_of_model_versions() -> None:
    registry = CollectorRegistry()
    counters = JoinCounters(registry)
    spec = join_spec(contract(), Settings())
    one = PerformancePartial(1, 0, 0, 0, (0,) * 9 + (1,), (0,) * 10, (0,) * 9 + (score_units(0.95),), 1, 2.0, 2.0)
    for i in range(MAX_MODEL_VERSIONS + 3):
        counters.published(spec, f"v{i}", one)
    versions = {s.labels["model_version"] for m in registry.collect() if m.name == "qstreams_model_accuracy"
                for s in m.samples}  # fmt: skip
    assert len(versions) == MAX_MODEL_VERSIONS and "v0" not in versions and f"v{MAX_MODEL_VERSIONS + 2}" in versions


def test_events_are_valid_deterministic_and_keyed_by_contract() -> None:
    data = generate(seed=3, n=80, orphans=3)
    ids = []
    for _ in range(2):
        clock = Clock()
        joiner = make_joiner(clock)
        out = run(data.messages, joiner, clock) + close(joiner, clock)
        ids.append([from_kafka(r.key, r.value, r.headers).get_id() for r in out])
        for r in out:
            e = from_kafka(r.key, r.value, r.headers)
            validate_event(e)
            assert r.key == b"urn:test:fraud-predictions" and e.get_type() == "io.qualitystreams.model.performance.v1"
            d = event_data(e)
            assert d["scope"] == "window" and d["labels_topic"] == LABELS and d["horizon_seconds"] == 300
            assert e.get_extension("severity") == ("ok" if d["count"] else "info")
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0]) > 5


LABELS_LINE = (
    "          labels: {topic: preds.labels.v1, predictionId: prediction_id, label: actual, labelTime: labelled_at, "
    "horizon: 5m}"
)


@pytest.mark.parametrize(("replacement", "message"), [
    (LABELS_LINE.replace("horizon: 5m", "horizon: soon"), "horizon: 'soon' is not a duration"),
    (LABELS_LINE.replace(", horizon: 5m", ""), "needs `horizon`"),
    (LABELS_LINE.replace("label: actual", "label: actual, colour: red"), "unknown keys \\['colour'\\]"),
    (LABELS_LINE.replace("topic: preds.labels.v1", "topic: preds.v1"), "is the predictions topic"),
    (LABELS_LINE.replace("topic: preds.labels.v1", "topic: 3"), "topic must be a non-empty string"),
    ("          labels: 5m", "must be a mapping"),
])  # fmt: skip
def test_a_bad_labels_binding_is_a_contract_error_at_the_schema_line(replacement: str, message: str) -> None:
    assert LABELS_LINE in CONTRACT
    with pytest.raises(ContractError, match=message) as info:
        join_spec(contract(CONTRACT.replace(LABELS_LINE, replacement)), Settings())
    line = CONTRACT.splitlines().index(replacement if replacement in CONTRACT else LABELS_LINE) + 1
    assert info.value.path == "fraud.odcs.yaml" and info.value.line == line == 32  # the labels line
    assert str(info.value).startswith("fraud.odcs.yaml:32: ")


def test_labels_need_the_prediction_id_and_a_binding() -> None:
    no_id = CONTRACT.replace("          predictionId: prediction_id\n", "", 1)
    with pytest.raises(ContractError, match=r"qstreams\.prediction\.predictionId"):
        join_spec(contract(no_id), Settings())
    with pytest.raises(ContractError, match="must bind a labels topic"):
        join_spec(contract(CONTRACT.replace(LABELS_LINE + "\n", "")), Settings())
    spec = join_spec(contract(), Settings())
    assert (spec.window_ms, spec.lateness_ms, spec.horizon_ms, spec.event_time) == (60_000, 120_000, 300_000,
                                                                                    "predicted_at")  # fmt: skip


def test_contracts_lint_reports_a_bad_labels_binding(tmp_path: Any) -> None:
    from streams.lint import lint_file

    path = tmp_path / "fraud.odcs.yaml"
    path.write_text(CONTRACT.replace("horizon: 5m", "horizon: soon"))
    messages = [f.message for f in lint_file(path)]
    assert any("qstreams.prediction.labels.horizon" in m and "'soon' is not a duration" in m for m in messages)
    path.write_text(CONTRACT)
    assert not [m for m in (f.message for f in lint_file(path)) if "qstreams.prediction" in m]


def test_the_cli_refuses_a_bad_binding_with_file_and_line(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from streams.cli.main import app

    path = tmp_path / "fraud.odcs.yaml"
    path.write_text(CONTRACT.replace("horizon: 5m", "horizon: -5m"))
    result = CliRunner().invoke(app, ["performance", "run", "--contract", str(path)])
    assert result.exit_code == 2
    assert f"{path}:32: schema object 'predictions': qstreams.prediction.labels.horizon" in result.output


def test_idle_partitions_close_the_last_windows_and_skewed_records_hold_no_mark() -> None:
    f = Feed()
    f.pred("a", 0, 0.9)
    f.label("a", 3, True)
    f.pred("future", 10**8, 0.9)  # years ahead of the processing clock: skewed, the watermark ignores it
    f.label("future", 10**8, True)
    assert f.out == [] and f.joiner.final_ms is not None and f.joiner.final_ms < T0
    f.clock.t += 29  # not idle yet (STREAMS_WINDOW_IDLE_CLOSE_SECONDS: 30 s)
    assert f.joiner.tick() == []
    f.clock.t += 2
    published = [event_data(from_kafka(r.key, r.value, r.headers)) for r in f.joiner.tick()]
    assert [(d["model_version"], d["count"]) for d in published] == [("A", 1)]  # window 0 only: the skewed one waits
    # "a" is settled; its id is kept until every record within the horizon of it is late (a late label of it
    # must be counted late, not as a new orphan): here the window after its horizon, [300 s, 360 s), is not final
    assert set(f.joiner.entries) == {"a", "future"}
    assert f.joiner.entries["a"].pred_done and f.joiner.entries["a"].label_done


def test_a_restart_after_a_long_downtime_reads_the_backlog_as_data_not_as_idle_partitions() -> None:
    data = generate(seed=21, n=200, orphans=5)
    clock = Clock()
    first = make_joiner(clock)
    state: list[Message] = []
    half = len(data.messages) // 2
    before = run(data.messages[:half], first, clock, state)
    clock.t += 3 * 3600  # down for three hours: every partition's last record is long past the idle delay
    second = PerformanceJoiner(join_spec(contract(), Settings()), joiner_id="j1", events_topic="events", now=clock)
    second.restore(state)
    second.assign({PREDICTIONS: [0, 1], LABELS: [0, 1]})  # as the runner does: restore, then assign
    rest = sorted(data.messages[half:], key=lambda m: m.partition)  # partition 0's backlog first, then 1's
    after = run(rest, second, clock) + close(second, clock)
    got = events(before + after)
    assert second.counters.counts["late"] == 0
    assert got.keys() == expected(data).keys()
    for key, want in expected(data).items():
        assert got[key]["count"] == want["count"] and got[key]["confusion"] == want["confusion"]


def test_roc_auc_of_continuous_scores_is_within_the_reported_bound() -> None:
    import random

    rng = random.Random(4)
    f = Feed()
    scores, actuals = [], []
    for i in range(400):  # one window; scores anywhere in [0, 1] (several per score bin)
        actual = rng.random() < 0.4
        score = min(max(rng.gauss(0.62 if actual else 0.4, 0.15), 0.0), 1.0)
        scores.append(score)
        actuals.append(actual)
        f.pred(f"c{i}", i * 0.1, score)
        f.label(f"c{i}", i * 0.1 + 1, actual)
    [(_, d)] = [(k, d) for k, d in f.finish().items() if d["count"]]
    pos = [s for s, y in zip(scores, actuals, strict=True) if y]
    neg = [s for s, y in zip(scores, actuals, strict=True) if not y]
    exact = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert d["count"] == 400 and 0 < d["roc_auc_error_bound"] < 0.02
    assert abs(d["roc_auc"] - exact) <= d["roc_auc_error_bound"]
