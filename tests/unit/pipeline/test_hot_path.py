"""The hot path's shortcuts give the answers of the plain definitions they replace."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.formats.reasons import Format
from streams.pipeline.binding import Binding
from streams.pipeline.fitting import _all_fit, fits
from streams.pipeline.headers import header
from streams.pipeline.records import Message, OutRecord, forwarded, with_headers
from streams.pipeline.routed import Routed
from streams.settings import Mode, Settings
from streams.testing import generate_feature_records, make_messages

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "features.card-transactions.v1"

_headers = st.lists(st.tuples(st.sampled_from(["a", "trace-id", "qstreams.x"]), st.binary(max_size=300)), max_size=3)


@st.composite
def outputs(draw: st.DrawFn) -> list[OutRecord]:
    shared = tuple(draw(_headers))  # most outputs of a batch share one headers tuple
    out = []
    for _ in range(draw(st.integers(1, 30))):
        own = draw(st.booleans())
        out.append(OutRecord(
            draw(st.sampled_from(["t.validated", "t.quarantine", "t.dlq"])),
            draw(st.none() | st.binary(max_size=2_000)), draw(st.none() | st.binary(max_size=300)),
            tuple(draw(_headers)) if own else shared,
        ))  # fmt: skip
    return out


@settings(max_examples=300, deadline=None)
@given(outputs(), st.integers(100, 3_000), st.integers(100, 3_000), st.integers(100, 3_000))
def test_the_bound_on_a_batch_of_outputs_agrees_with_sizing_each(records: list[OutRecord], a: int, b: int,
                                                                 c: int) -> None:  # fmt: skip
    limits = {"t.validated": a, "t.quarantine": b, "t.dlq": c}
    assert _all_fit(records, limits) == all(fits(r, limits[r.topic]) for r in records)


def test_a_batch_of_several_partitions_reports_each_partition_s_offsets() -> None:
    """The worker hands one partition per batch; ``process`` still takes any mix, in any order."""
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    binding = Binding(contract, contract.schema(), Settings(mode=Mode.GATE, batch_events=True, stream_time=False))
    records = generate_feature_records(30, seed=4).records
    made = make_messages(records, TOPIC, start_offset=100)
    messages = [replace(m, partition=k % 3, offset=1_000 - 7 * k if k % 3 == 1 else m.offset)
                for k, m in enumerate(made)]  # fmt: skip
    result = binding.process(messages, worker_id="w")
    last = {p: max(m.offset for m in messages if m.partition == p) for p in (0, 1, 2)}
    assert result.last_offsets == last
    [summary] = [e for e in result.events if header(e.headers, "ce_type") == b"io.qualitystreams.batch.summary.v1"]
    data = orjson.loads(summary.value or b"")  # binary mode: the value is the data
    spans = {p["partition"]: (p["first"], p["last"]) for p in data["offsets"]}
    assert spans == {p: (min(m.offset for m in messages if m.partition == p), last[p]) for p in (0, 1, 2)}
    stamps = [m.timestamp_ms for m in messages if m.timestamp_ms is not None]
    start = datetime.fromisoformat(data["window"]["start"]).timestamp() * 1000
    assert round(start) == min(stamps)


def test_pipeline_records_stay_hashable_values() -> None:
    m = Message("t", 0, 1, b"v", b"k", (("h", b"1"),), 5)
    assert m == Message("t", 0, 1, b"v", b"k", (("h", b"1"),), 5) and hash(m) == hash(replace(m))
    r = OutRecord("t", b"v")
    assert replace(r, key=b"k") == OutRecord("t", b"v", b"k") and len({r, OutRecord("t", b"v")}) == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.none() | st.binary(max_size=50), st.none() | st.binary(max_size=20), _headers,
                  st.none() | st.integers(-1, 2**45)),
        min_size=1,
        max_size=20,
    ),
    _headers,
)  # fmt: skip
def test_forwarded_records_are_the_records_the_constructor_builds(rows: list, ours: list) -> None:
    """``forwarded`` sets every field itself (no ``__init__``): a field added to OutRecord and not set there fails
    here (an unset slot raises on read, and the records compare unequal)."""
    messages = [Message("t", 0, k, v, key, tuple(h), ts) for k, (v, key, h, ts) in enumerate(rows)]
    got = forwarded("t.validated", messages, tuple(ours))
    want = [OutRecord("t.validated", m.value, m.key, m.headers + tuple(ours), m.timestamp_ms) for m in messages]
    assert len(got) == len(messages)
    for g, w in zip(got, want, strict=True):
        assert [getattr(g, f.name) for f in fields(OutRecord)] == [getattr(w, f.name) for f in fields(OutRecord)]
        assert g == w and hash(g) == hash(w) and type(g) is OutRecord


def test_with_headers_keeps_every_other_field_as_replace_does() -> None:
    """Built from every field's own value (none a default): a field added to OutRecord and not copied fails here."""
    values = {"topic": "t.quarantine", "value": b"v", "key": b"k", "headers": (("a", b"1"),), "timestamp_ms": 17,
              "partition": 3}  # fmt: skip
    assert set(values) == {f.name for f in fields(OutRecord)}
    ours = (("qstreams.mode", b"gate"), ("qstreams.worker", b"w"))
    records = [OutRecord(**values), OutRecord(**{**values, "partition": None, "timestamp_ms": None})]
    got = with_headers(records, ours)
    assert got == [replace(r, headers=r.headers + ours) for r in records]
    assert [g.partition for g in got] == [3, None] and got[0].headers == (("a", b"1"), *ours)


def test_quarantine_headers_kept_per_verdict_are_those_a_fresh_binding_builds() -> None:
    """``Binding._quarantine`` keeps the headers of a verdict (rules, records, format, rules that could not run):
    a binding that has routed other verdicts gives every record the headers of a binding routing it first."""
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    schema = contract.schema(None)
    settings = Settings(mode=Mode.GATE)
    warm = Binding(contract, schema, settings)
    cases = [
        (["amount_range", "currency_enum"], frozenset(), 1, Format.JSON),
        (["amount_range", "currency_enum"], frozenset({"amount_range", "currency_enum"}), 1, Format.JSON),
        (["amount_range", "currency_enum"], frozenset({"amount_range"}), 1, Format.JSON),
        (["amount_range"], frozenset(), 3, Format.NDJSON),
        (["amount_range", "currency_enum"], frozenset(), 1, Format.JSON),
    ]
    classes = []
    for k, (rules, errored, n, fmt) in enumerate(cases * 2):
        m = Message(TOPIC if k % 2 else "other.topic", k % 3, 40 + k, b"{}", b"k", (("trace", b"1"),), 5)
        got, want = Routed(), Routed()
        fresh = Binding(contract, schema, settings)
        for b, out in ((warm, got), (fresh, want)):
            b._errored = errored
            b._quarantine(out, m, m.value, (("x", b"y"),), rules=list(rules), n=n, fmt=fmt)
        assert got.quarantined == want.quarantined and len(got.quarantined) == 1
        headers = dict(got.quarantined[0].headers)
        assert headers["qstreams.errors.offset"] == str(40 + k).encode()
        assert got.quarantined[0].topic == f"{m.topic}.quarantine"
        classes.append(headers["qstreams.errors.class"])
    assert classes[:5] == [b"contract.violation", b"contract.rule_error", *[b"contract.violation"] * 3] == classes[5:]
