"""Under stream time a poll is decoded and validated once, and each partition batch gets its slice of that.

Differential (hypothesis): the same polls of several partitions - valid, wrong-typed, undecodable, NDJSON and
Arrow messages, values repeated across partitions, late and skewed records - go through ``Binding.process_poll``
(one decode and one validation per poll, the stages and routing per partition slice) and through
``Binding.process`` partition batch by partition batch, each binding with its own stream-time stage. Every batch
must get the same result (outputs with their headers, counts, offsets, state records, rule failures, the per-row
verdicts of its report), the stream-time state must end the same, and so must every window's verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.pipeline.binding import Binding
from streams.pipeline.headers import NDJSON
from streams.pipeline.records import BatchResult, Message
from streams.settings import Mode, Settings
from streams.validation.report import ValidationReport
from streams.windows.codec import Partial, decode, encode
from streams.windows.finalize import WindowVerdict, finalize
from streams.windows.partial import WindowKey, WindowPartial, merge_all
from streams.windows.topics import STATE_SUFFIX
from streams.windows.worker import WindowsStage

TOPIC = "orders.v1"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = T0 + 30_000  # the wall clock: records more than 5 s beyond it are skewed

# every window rule kind: row rules (gating and thresholded), stream uniqueness (primaryKey), duplicateValues
# (thresholded, and zero-tolerance: it gates rows for the engine, never on the stream), rowCount, mergeable and
# non-mergeable SQL (warnings: an error-severity SQL rule keeps batches one by one, see the last test)
CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: 1.2.0
status: active
schema:
  - name: orders
    physicalName: orders.v1
    customProperties:
      - {property: qstreams.eventTime, value: event_ts}
      - {property: qstreams.window, value: 10s}
      - {property: qstreams.allowedLateness, value: 2s}
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
      - name: event_ts
        logicalType: timestamp
        required: true
      - name: amount
        logicalType: number
        logicalTypeOptions: {minimum: 0}
        quality:
          - {name: amount_nulls, type: library, metric: nullValues, mustBeLessThan: 20, unit: percent,
             severity: warning}
      - name: country
        logicalType: string
        quality:
          - {name: country_known, type: library, metric: invalidValues, arguments: {validValues: [DE, FR, US]},
             mustBeLessOrEqualTo: 2}
      - name: code
        logicalType: string
        quality:
          - {name: code_duplicates, type: library, metric: duplicateValues, mustBeLessOrEqualTo: 1}
      - name: ref
        logicalType: string
        quality:
          - {name: ref_once, type: library, metric: duplicateValues, mustBe: 0}
    quality:
      - {name: enough_rows, type: library, metric: rowCount, mustBeGreaterOrEqualTo: 4}
      - name: big_share
        type: sql
        query: "SELECT 100.0 * SUM(CASE WHEN amount > 50 THEN 1 ELSE 0 END) / COUNT(*) FROM orders"
        mustBeLessThan: 40
        severity: warning
      - name: mean_amount
        type: sql
        query: "SELECT AVG(amount) FROM orders WHERE country = 'DE'"
        mustBeLessThan: 60
        severity: warning
      - name: countries
        type: sql
        query: "SELECT COUNT(DISTINCT country) FROM orders"
        mustBeLessOrEqualTo: 3
        severity: warning
"""


def contract(text: str = CONTRACT) -> Contract:
    return parse_contract(text, path="orders.yaml")


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


record = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), st.integers(0, 8)),  # few ids: duplicates within and across partitions
        "event_ts": st.integers(-25_000, 40_000).map(lambda at: stamp(T0 + at)),  # late and skewed ones too
        "amount": st.one_of(st.none(), st.floats(-5, 100, allow_nan=False)),
        "country": st.sampled_from(["DE", "FR", "US", "XX", None]),
        "code": st.sampled_from(["a", "b", "c", None]),
        "ref": st.sampled_from(["r1", "r2", "r3", "r4", None]),
    }
)


def arrow(rows: list[dict[str, Any]]) -> bytes:
    table = pa.table({
        "id": pa.array([r["id"] for r in rows], pa.int64()),
        "event_ts": pa.array([r["event_ts"] for r in rows], pa.string()),
        "amount": pa.array([r["amount"] for r in rows], pa.float64()),
        "country": pa.array([r["country"] for r in rows], pa.string()),
        "code": pa.array([r["code"] for r in rows], pa.string()),
        "ref": pa.array([r["ref"] for r in rows], pa.string()),
    })  # fmt: skip
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@st.composite
def message(draw: st.DrawFn) -> tuple[bytes | None, tuple[tuple[str, bytes], ...]]:
    """A message value and its headers: mostly one JSON record, sometimes something worse."""
    kind = draw(st.sampled_from(["json"] * 8 + ["broken", "empty", "array", "wrong", "extra", "missing", "ndjson",
                                                 "arrow"]))  # fmt: skip
    r = draw(record)
    if kind == "broken":
        return b'{"id": 1, "event_ts"', ()
    if kind == "empty":
        return None, ()
    if kind == "array":
        return b"[1, 2]", ()
    if kind == "wrong":
        return orjson.dumps(r | {"amount": "lots"}), ()
    if kind == "extra":
        return orjson.dumps(r | {"note": "undeclared"}), ()
    if kind == "missing":
        return orjson.dumps({k: v for k, v in r.items() if k != "event_ts"}), ()
    if kind == "ndjson":
        second = draw(st.sampled_from([orjson.dumps(draw(record)), b"{bad line"]))
        return orjson.dumps(r) + b"\n" + second + b"\n", (("content-type", NDJSON.encode()),)
    if kind == "arrow":
        return arrow([r, *draw(st.lists(record, max_size=2))]), ()
    return orjson.dumps(r), ()


#: polls: each a few partitions' batches (in the order the poll returned them)
polls = st.lists(
    st.dictionaries(st.integers(0, 3), st.lists(message(), min_size=1, max_size=6), min_size=2, max_size=4),
    min_size=1,
    max_size=4,
)


def messages_of(drawn: list[dict[int, list[Any]]]) -> list[list[list[Message]]]:
    """The drawn polls as partition batches, offsets consecutive per partition."""
    offsets: dict[int, int] = {}
    out = []
    for k, poll in enumerate(drawn):
        batches = []
        for p, values in poll.items():
            first = offsets.get(p, 10 * p)
            batches.append([
                Message(TOPIC, p, first + i, value, b"key", headers, T0 + 1_000 * k + i)
                for i, (value, headers) in enumerate(values)
            ])  # fmt: skip
            offsets[p] = first + len(values)
        out.append(batches)
    return out


def binding(mode: Mode, c: Contract | None = None, **extra: Any) -> Binding:
    c = c or contract()
    s = Settings(mode=mode, web_port=0, max_clock_skew_seconds=5, unique_horizon_seconds=3_600, **extra)
    b = Binding(c, c.schema(), s)
    b.stages.append(WindowsStage(c, c.schema(), s, plan=b.plan))  # as the worker builds it (observer.install)
    return b


@contextmanager
def frozen_clock() -> Iterator[None]:
    with mock.patch("streams.windows.worker.now_ms", lambda: NOW):
        yield


def per_row(report: object) -> tuple[Any, ...] | None:
    if report is None:
        return None
    assert isinstance(report, ValidationReport)
    return (report.rows, report.valid_rows, report.valid_mask.to_list(), report.violations.to_list(),
            report.gating().to_list())  # fmt: skip


def seen(r: BatchResult) -> tuple[Any, ...]:
    return (r.validated, r.quarantined, r.dead_lettered, r.events, r.counts, r.last_offsets, r.rule_failures,
            per_row(r.report))  # fmt: skip


def verdicts(results: list[BatchResult], c: Contract) -> dict[WindowKey, WindowVerdict]:
    """Every window's verdict from the partials the batches published (the latest per partition, merged)."""
    latest: dict[tuple[WindowKey, int], WindowPartial] = {}
    for r in results:
        for e in r.events:
            rec = decode(e.value) if e.value is not None and e.topic.endswith(STATE_SUFFIX) else None
            if isinstance(rec, Partial):
                latest[(rec.partial.key, rec.partition)] = rec.partial
    stage = WindowsStage(c, c.schema(), Settings(web_port=0))
    out = {}
    for key in {k for k, _ in latest}:
        merged = merge_all(part for (k, _), part in sorted(latest.items(), key=lambda kv: kv[0][1]) if k == key)
        assert merged is not None
        out[key] = finalize(stage.plan, merged)
    return out


def state(b: Binding) -> dict[int, tuple[Any, ...]]:
    stage = b.stages[0]
    assert isinstance(stage, WindowsStage)
    return {
        p: (s.clock, s.counted_through, {k: encode(Partial(p, v)) for k, v in s.open.items()},
            {k: (at, encode(Partial(p, v))) for k, (at, v) in s.closed.items()},
            {c: (len(u), u.nbytes, u.buckets) for c, u in s.unique.items()})
        for p, s in stage.stream.states.items()
    }  # fmt: skip


def run_both(drawn: list[Any], mode: Mode) -> tuple[list[BatchResult], list[BatchResult], Binding, Binding, int]:
    polled = messages_of(drawn)
    together, alone = binding(mode), binding(mode)
    decodes = 0
    decode = together.decoder.decode

    def counted(ms: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return decode(ms)

    together.decoder.decode = counted  # type: ignore[method-assign]
    split, one_by_one = [], []
    with frozen_clock():
        for batches in polled:
            split += together.process_poll(batches, worker_id="w")
            one_by_one += [alone.process(b, worker_id="w") for b in batches]
    return split, one_by_one, together, alone, decodes


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # slow examples: report as found, without shrinking
)
@given(polls, st.sampled_from([Mode.GATE, Mode.MONITOR]))
def test_a_poll_sliced_per_partition_gives_what_each_partition_batch_gives_alone(drawn: list[Any], mode: Mode) -> None:
    split, one_by_one, together, alone, decodes = run_both(drawn, mode)

    assert decodes == len(drawn)  # one decode (and validation) per poll: the poll was not processed one by one
    assert len(split) == len(one_by_one) == sum(len(p) for p in drawn)
    for s, o in zip(split, one_by_one, strict=True):
        assert seen(s) == seen(o)
        assert not s.poll_events  # each batch carries its own state records
    assert state(together) == state(alone)
    c = together.contract
    assert verdicts(split, c) == verdicts(one_by_one, c)


def test_a_fixed_poll_exercises_what_the_differential_test_claims() -> None:
    """One poll, by hand: a value repeated across partitions, an undecodable message, an Arrow message (its rows
    come after the JSON ones), a late record. Per partition the results are equal and not trivial."""
    late_first = {"id": 7, "event_ts": stamp(T0 + 30_000), "amount": 1.0, "country": "DE", "code": "a", "ref": "r1"}
    late = late_first | {"id": 8, "event_ts": stamp(T0)}
    twin = {"id": 3, "event_ts": stamp(T0 + 1_000), "amount": 2.0, "country": "FR", "code": "b", "ref": "r2"}
    drawn = [{
        0: [(orjson.dumps(twin), ()), (b"{broken", ()), (arrow([twin | {"id": 4}]), ()), (orjson.dumps(late_first), ()),
            (orjson.dumps(late), ())],
        1: [(orjson.dumps(twin), ()), (arrow([twin | {"id": 5, "amount": -1.0}]), ()),
            (orjson.dumps(twin | {"id": 6}), ())],
    }]  # fmt: skip
    split, one_by_one, together, _, decodes = run_both(drawn, Mode.GATE)
    assert decodes == 1
    for s, o in zip(split, one_by_one, strict=True):
        assert seen(s) == seen(o)
    first, second = split
    # id 3 in both partitions: stream uniqueness is per partition, so neither is a duplicate (the poll's engine
    # saw a duplicate, and the amended verdict drops it); ref r2 is repeated (ref_once) but never gates a record
    assert first.counts == {"valid": 4, "quarantined": 0, "dead_lettered": 1}
    assert second.counts == {"valid": 2, "quarantined": 1, "dead_lettered": 0}
    assert "ref_once" not in first.rule_failures and "id:unique" not in first.rule_failures
    [bad] = second.quarantined
    assert dict(bad.headers)["qstreams.errors.rules"] == b"amount:minimum"
    assert sum(len(r.events) for r in split) > 0
    late_windows = [v.late for v in verdicts(split, together.contract).values()]
    assert sum(late_windows) == 1


def test_an_error_severity_sql_rule_keeps_the_batches_one_by_one() -> None:
    """A rule failing every row of a batch it cannot run on, where running depends on the batch's rows: the poll's
    validation cannot stand for the partition batches', so they are processed one by one."""
    strict = contract(CONTRACT.replace("        mustBeLessThan: 60\n        severity: warning\n",
                                       "        mustBeLessThan: 60\n"))  # fmt: skip
    together, alone = binding(Mode.GATE, strict), binding(Mode.GATE, strict)
    calls: list[int] = []
    decode = together.decoder.decode
    together.decoder.decode = lambda ms: calls.append(len(ms)) or decode(ms)  # type: ignore[method-assign]
    de = {"id": 1, "event_ts": stamp(T0), "amount": 1.0, "country": "DE", "code": "a", "ref": "r1"}
    fr = de | {"id": 2, "country": "FR"}  # AVG over no DE row is NULL: the rule cannot run on partition 1 alone
    batches = [[Message(TOPIC, 0, 0, orjson.dumps(de))], [Message(TOPIC, 1, 0, orjson.dumps(fr))]]
    with frozen_clock():
        split = together.process_poll(batches, worker_id="w")
        one_by_one = [alone.process(b, worker_id="w") for b in batches]
    assert calls == [1, 1]
    assert [seen(s) for s in split] == [seen(o) for o in one_by_one]
    assert one_by_one[1].counts["quarantined"] == 1  # failed closed on partition 1 only
    assert one_by_one[0].counts["valid"] == 1


def test_per_batch_events_keep_the_batches_one_by_one() -> None:
    together = binding(Mode.GATE, batch_events=True)
    calls: list[int] = []
    decode = together.decoder.decode
    together.decoder.decode = lambda ms: calls.append(len(ms)) or decode(ms)  # type: ignore[method-assign]
    rec = {"id": 1, "event_ts": stamp(T0), "amount": 1.0, "country": "DE", "code": "a", "ref": "r1"}
    batches = [[Message(TOPIC, p, 0, orjson.dumps(rec))] for p in range(3)]
    with frozen_clock():
        results = together.process_poll(batches, worker_id="w")
    assert calls == [1, 1, 1]
    summaries = [
        e for r in results for e in r.events if ("ce_type", b"io.qualitystreams.batch.summary.v1") in e.headers
    ]
    assert len(summaries) == 3  # one per partition batch, each describing its own


@pytest.mark.parametrize("policy", [False, True])
def test_the_policy_stage_keeps_stream_time_at_one_stage_call_per_poll(policy: bool) -> None:
    """Every ``qstreams worker`` appends the ``quarantine-stream`` policy stage after the stream-time one; a stage
    without ``amend_poll`` made the stream-time stage run once per partition batch of every poll (issue 13: the
    fixed cost of a slow feed). With it, one ``amend_poll`` per poll, and each batch gets what it gets alone,
    whether a policy is engaged or not."""
    from streams.policies.control import Engaged, QuarantineStage

    def with_policy() -> Binding:
        b = binding(Mode.GATE)
        engaged = Engaged({(b.contract.id, b.schema.name): {"stop-the-line": "incident-1"}} if policy else {})
        b.stages.append(QuarantineStage(b.contract.id, b.schema.name, engaged))
        return b

    together, alone = with_policy(), with_policy()
    stage = together.stages[0]
    assert isinstance(stage, WindowsStage)
    calls: list[str] = []
    amend, amend_poll = stage.amend, stage.amend_poll
    stage.amend = lambda *a: calls.append("amend") or amend(*a)  # type: ignore[method-assign]
    stage.amend_poll = lambda *a: calls.append("amend_poll") or amend_poll(*a)  # type: ignore[method-assign]
    rec = {"id": 1, "event_ts": stamp(T0), "amount": 1.0, "country": "DE", "code": "a", "ref": "r1"}
    batches = [[Message(TOPIC, p, o, orjson.dumps(rec | {"id": 10 * p + o})) for o in range(3)] for p in range(3)]
    with frozen_clock():
        split = together.process_poll(batches, worker_id="w")
        one_by_one = [alone.process(b, worker_id="w") for b in batches]
    assert calls == ["amend_poll"]
    assert [seen(s) for s in split] == [seen(o) for o in one_by_one]
    assert state(together) == state(alone)
    outcome = "quarantined" if policy else "valid"
    assert [r.counts[outcome] for r in split] == [3, 3, 3]
    assert all(any(e.topic.endswith(STATE_SUFFIX) for e in r.events) for r in split)  # each its own state records


def test_the_stream_time_stage_takes_the_frame_the_binding_conformed() -> None:
    """The engine conforms the poll it validates; the stream-time stage conformed the very same frame again (issue
    13: a fixed cost per poll). With the binding's plan it takes the engine's, and a frame it was not given
    validated (a slice, another batch) is still conformed: the differential tests above run this way."""
    import streams.validation.engine as engine

    calls: list[int] = []
    conform_batch = engine.conform_batch

    def counted(df: Any, *args: Any) -> Any:
        calls.append(df.height)
        return conform_batch(df, *args)

    together, alone = binding(Mode.GATE), binding(Mode.GATE)
    rec = {"id": 1, "event_ts": stamp(T0), "amount": 1.0, "country": "DE", "code": "a", "ref": "r1"}
    batches = [[Message(TOPIC, p, o, orjson.dumps(rec | {"id": 10 * p + o})) for o in range(3)] for p in range(3)]
    with frozen_clock(), mock.patch.object(engine, "conform_batch", counted):
        split = together.process_poll(batches, worker_id="w")
        poll_calls, calls[:] = list(calls), []
        one_by_one = [alone.process(b, worker_id="w") for b in batches]
    assert poll_calls == [9]  # once for the poll of 9 records (the engine's), not a second time by the stage
    assert calls == [3, 3, 3]  # one batch at a time: once each
    assert [seen(s) for s in split] == [seen(o) for o in one_by_one]
    stage = together.stages[0]
    assert isinstance(stage, WindowsStage)
    fresh = stage._conform
    assert fresh is not None
    other = together.decoder.decode(batches[0]).frame  # not the frame last validated: conformed, not taken
    with mock.patch.object(engine, "conform_batch", counted):
        fresh(other)
    assert calls == [3, 3, 3, 3]
