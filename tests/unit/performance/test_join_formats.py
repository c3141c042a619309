"""The labels join reads a predictions message as the worker reads it (``streams.formats``): every record of an NDJSON
or Arrow IPC message is a prediction (or a skip) of its own, the ``content-type`` header choosing the format as it does
for the worker; a message (or NDJSON line) the worker dead-letters is ``undecodable``. Before, the join read one JSON
object per message: a producer batching NDJSON or Arrow had every prediction counted ``undecodable`` while the worker
validated and profiled them. A message is still one offset: a restore replays or skips it whole."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.formats.content_types import ARROW_STREAM, CONTENT_TYPE, NDJSON
from streams.formats.decoder import MessageDecoder
from streams.performance.binding import join_spec
from streams.pipeline.records import Message
from streams.settings import Settings
from tests.unit.performance.scenario import (
    LABELS,
    PREDICTIONS,
    T0,
    Data,
    contract,
    generate,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_join_cases import Feed
from tests.unit.performance.test_joiner import (
    Clock,
    check_against_independent,
    close,
    commit,
    events,
    make_joiner,
    run,
)

S = 1000
PREDS = [("a", 1, 0.905, "A"), ("b", 2, 0.105, "A"), ("c", 3, 0.705, "B")]


def _records() -> list[dict[str, Any]]:
    return [prediction_record(pid, T0 + t * S, v, score, score >= 0.5) for pid, t, score, v in PREDS]


def _ndjson(*lines: dict[str, Any] | bytes) -> bytes:
    return b"\n".join(x if isinstance(x, bytes) else orjson.dumps(x) for x in lines) + b"\n"


def _arrow(records: list[dict[str, Any]], *, typed_time: bool) -> bytes:
    rows = [dict(r) for r in records]
    if typed_time:  # an Arrow timestamp column, as a pandas or polars producer writes it
        for r in rows:
            r["predicted_at"] = datetime.fromisoformat(r["predicted_at"].replace("Z", "+00:00")).astimezone(UTC)
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _send(f: Feed, topic: str, value: bytes, headers: tuple[tuple[str, bytes | None], ...] = ()) -> None:
    f.out += f.joiner.handle(Message(topic, 0, f.offsets[topic], value, None, headers, T0))
    f.offsets[topic] += 1


def _labels(f: Feed) -> None:
    for pid, t, score, _ in PREDS:
        f.label(pid, t + 10, score >= 0.5 if pid != "c" else False)  # "c" is a false positive


def _one_per_message() -> dict[tuple[int, str], dict[str, Any]]:
    """The reference: the same predictions, one JSON object per message."""
    f = Feed()
    for r in _records():
        f.send(PREDICTIONS, r)
    _labels(f)
    return f.finish()


def test_an_ndjson_message_of_three_predictions_is_three_predictions() -> None:
    f = Feed()
    _send(f, PREDICTIONS, _ndjson(*_records()))  # no header: a value of several lines starting with an object
    _labels(f)
    assert f.joiner.counters.skipped == {}
    assert f.joiner.counters.counts["matched"] == 3
    got = f.finish()
    assert got == _one_per_message()
    assert got[(T0, "A")]["count"] == 2 and got[(T0, "B")]["confusion"]["fp"] == 1


@pytest.mark.parametrize("typed_time", [True, False])
def test_an_arrow_message_is_one_prediction_per_row(typed_time: bool) -> None:
    f = Feed()
    _send(f, PREDICTIONS, _arrow(_records(), typed_time=typed_time))
    _labels(f)
    assert f.joiner.counters.skipped == {}
    assert f.joiner.counters.counts["matched"] == 3
    assert f.finish() == _one_per_message()


def test_a_mixed_ndjson_message_counts_each_line() -> None:
    a, b, c = _records()
    f = Feed()
    value = _ndjson(
        a,
        b'{"prediction_id": "x", "score": 0.5',  # truncated: dead-lettered by the worker
        b"[1, 2]",  # not an object: dead-lettered
        b'{"prediction_id": "d", "prediction_id": "e", "score": 0.5}',  # a repeated key: dead-lettered
        b"",  # a blank line: no record
        orjson.dumps({**b, "prediction_id": "nan"}).replace(b"0.105", b"NaN"),  # Python's NaN: a bad score
        {**b, "prediction_id": None},  # no id
        c,
    )
    _send(f, PREDICTIONS, value)
    _labels(f)
    assert f.joiner.counters.skipped == {
        ("predictions", "undecodable"): 3, ("predictions", "bad_score"): 1, ("predictions", "no_prediction_id"): 1,
    }  # fmt: skip
    assert f.joiner.counters.counts["matched"] == 2  # a and c; b's label is an orphan
    spec = join_spec(contract(), Settings())
    worker = MessageDecoder(spec.contract.schema(spec.schema)).decode([Message(PREDICTIONS, 0, 0, value, None)])
    assert len(worker.dead) == 4 and worker.frame.height == 3  # the worker: 4 lines dead-lettered (NaN too), 3 records
    got = f.finish()
    assert got[(T0, "A")]["count"] == 1 and got[(T0, "B")]["count"] == 1 and got[(T0, "")]["orphan_labels"] == 1


def test_the_content_type_header_chooses_the_format() -> None:
    a, b, c = _records()
    f = Feed()
    garbage_first = _ndjson(b"not json", a, b)
    _send(f, PREDICTIONS, garbage_first)  # no header: one value that is not JSON, dead-lettered whole
    assert f.joiner.counters.skipped == {("predictions", "undecodable"): 1}
    _send(f, PREDICTIONS, garbage_first, ((CONTENT_TYPE, NDJSON.encode() + b"; charset=utf-8"),))  # line by line
    assert f.joiner.counters.skipped == {("predictions", "undecodable"): 2}
    _send(f, PREDICTIONS, orjson.dumps(c), (("Content-Type", ARROW_STREAM.encode()),))  # JSON announced as Arrow
    assert f.joiner.counters.skipped == {("predictions", "undecodable"): 3}  # the worker: decode.BAD_ARROW
    _labels(f)
    assert f.joiner.counters.counts["matched"] == 2  # a and b of the NDJSON message; c was never a prediction
    assert f.finish()[(T0, "")]["orphan_labels"] == 1


def _grouped(data: Data, size: int) -> list[Message]:
    """``data.messages`` with each partition's predictions sent as NDJSON messages of ``size`` records (consecutive
    in that partition), each at the place of its first record; offsets renumbered."""
    seen: dict[int, int] = defaultdict(int)
    groups: dict[tuple[int, int], list[bytes]] = defaultdict(list)
    order: list[tuple[Message, tuple[int, int] | None]] = []
    for m in data.messages:
        if m.topic != PREDICTIONS:
            order.append((m, None))
            continue
        g = (m.partition, seen[m.partition] // size)
        seen[m.partition] += 1
        if not groups[g]:
            order.append((m, g))
        groups[g].append(m.value or b"")
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out = []
    for m, g in order:
        value = m.value if g is None else b"\n".join(groups[g])
        tp = (m.topic, m.partition)
        out.append(Message(m.topic, m.partition, offsets[tp], value, m.key, (), m.timestamp_ms))
        offsets[tp] += 1
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), size=st.integers(2, 5), cut=st.floats(0.0, 1.0), batch=st.integers(1, 30))
def test_ndjson_predictions_join_and_restore_exactly_once(seed: int, size: int, cut: float, batch: int) -> None:
    data = generate(seed, n=90, orphans=5)
    messages = _grouped(data, size)
    assert any(m.topic == PREDICTIONS and (m.value or b"").count(b"\n") for m in messages)
    clock = Clock()
    joiner = make_joiner(clock)
    uninterrupted = run(messages, joiner, clock, batch=batch) + close(joiner, clock)
    check_against_independent(data, uninterrupted)
    assert joiner.counters.skipped == {}
    # a crash after the poll holding message k: a message of several records is committed or replayed whole
    k = int(cut * len(messages)) // batch * batch
    clock = Clock()
    state: list[Message] = []
    first = make_joiner(clock)
    before = run(messages[:k], first, clock, state, batch=batch)
    if k < len(messages):
        first.handle(messages[k])  # consumed, never committed
    second = make_joiner(clock)
    second.restore(state)
    after = run(messages, second, clock, batch=batch) + close(second, clock)
    assert [(r.key, r.value) for r in before + after] == [(r.key, r.value) for r in uninterrupted]
    assert events(before + after) == events(uninterrupted)


def test_commit_keeps_one_offset_per_message() -> None:
    clock = Clock()
    joiner = make_joiner(clock, partitions=1)
    joiner.handle(Message(PREDICTIONS, 0, 7, _ndjson(*_records()), None))
    state: list[Message] = []
    commit(joiner, state)
    offsets = [orjson.loads(m.value or b"null") for m in state if b'"offset"' in (m.key or b"")]
    assert offsets and offsets[0]["next"] == 8  # the message after it, not one offset per record
    assert len(joiner.entries) == 3


def test_a_prediction_the_worker_dead_letters_for_a_nan_outside_its_score_is_undecodable() -> None:
    """A ``NaN`` in another field makes the record no JSON: the worker dead-letters it (``decode.NOT_JSON``), neither
    validated nor profiled. The join counted it as a prediction (it read Python's JSON to name a NaN score)."""
    a, b, c = _records()
    f = Feed()
    _send(f, PREDICTIONS, orjson.dumps({**a, "latency_ms": 0.25}).replace(b"0.25", b"NaN"))  # one JSON object
    _send(f, PREDICTIONS, _ndjson(b, orjson.dumps({**c, "latency_ms": 0.25}).replace(b"0.25", b"Infinity")))
    _send(f, PREDICTIONS, orjson.dumps({**a, "prediction_id": "s"}).replace(b"0.905", b"NaN"))  # its score: named
    assert f.joiner.counters.skipped == {("predictions", "undecodable"): 2, ("predictions", "bad_score"): 1}
    _labels(f)
    assert f.joiner.counters.counts["matched"] == 1  # b alone
    assert f.finish()[(T0, "")]["orphan_labels"] == 2


def _label_records() -> list[dict[str, Any]]:
    return [label_record(pid, T0 + (t + 10) * S, score >= 0.5 if pid != "c" else False) for pid, t, score, _ in PREDS]


def _with_predictions() -> Feed:
    f = Feed()
    for r in _records():
        f.send(PREDICTIONS, r)
    return f


def test_an_ndjson_labels_message_is_one_label_per_line() -> None:
    f = _with_predictions()
    _send(f, LABELS, _ndjson(*_label_records()))  # no header: JSON objects on several lines
    assert f.joiner.counters.skipped == {}
    assert f.joiner.counters.counts["matched"] == 3
    assert f.finish() == _one_per_message()


def test_an_ndjson_labels_message_announced_counts_each_line() -> None:
    a, b, c = _label_records()
    f = _with_predictions()
    value = _ndjson(b"not json", a, b"[1]", b"", {**b, "prediction_id": None}, c)
    _send(f, LABELS, value, ((CONTENT_TYPE, NDJSON.encode()),))
    assert f.joiner.counters.skipped == {("labels", "undecodable"): 2, ("labels", "no_prediction_id"): 1}
    assert f.joiner.counters.counts["matched"] == 2  # a and c
    _send(f, LABELS, value)  # unannounced, its first line not JSON: one value that is not JSON
    assert f.joiner.counters.skipped == {("labels", "undecodable"): 3, ("labels", "no_prediction_id"): 1}


@pytest.mark.parametrize("unit", [None, "us", "ns"])
def test_an_arrow_labels_message_is_one_label_per_row(unit: str | None) -> None:
    rows = _label_records()
    table = pa.Table.from_pylist(rows)
    if unit is not None:  # an Arrow timestamp column (naive: UTC), as a pandas or polars producer writes it
        stamps = [int(datetime.fromisoformat(r["labelled_at"].replace("Z", "+00:00")).timestamp() * 1000) for r in rows]
        ns = pa.array([ms * 1_000_000 + 999_999 for ms in stamps], pa.timestamp("ns"))  # within the millisecond
        table = table.set_column(
            table.schema.get_field_index("labelled_at"), "labelled_at", ns.cast(pa.timestamp(unit), safe=False)
        )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    f = _with_predictions()
    _send(f, LABELS, bytes(sink.getvalue().to_pybytes()))
    assert f.joiner.counters.skipped == {}
    assert f.joiner.counters.counts["matched"] == 3
    assert f.finish() == _one_per_message()
    g = _with_predictions()
    _send(g, LABELS, orjson.dumps(rows[0]), ((CONTENT_TYPE, ARROW_STREAM.encode()),))
    assert g.joiner.counters.skipped == {("labels", "undecodable"): 1}  # JSON announced as Arrow
