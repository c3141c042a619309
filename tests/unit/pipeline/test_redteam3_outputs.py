"""Red team 3, the record path's outputs: a re-encoded validated copy too large for its topic still names its source
record, a multi-record message's record index is never cut, and a record failing thousands of rules is produced
with a bounded, parseable rules header (never dropped, never crashing the batch)."""

from __future__ import annotations

import io

import orjson
import polars as pl
import pyarrow as pa
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.pipeline.binding import Binding
from streams.pipeline.fitting import fit, record_size
from streams.pipeline.headers import MAX_VALUE_BYTES, NDJSON, header, parse_positions
from streams.pipeline.records import Message, OutRecord
from streams.settings import Mode, Settings

TOPIC = "rt.probe.v1"
HEAD = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:rt
version: 1.0.0
status: active
team: {name: rt}
support: [{channel: "#rt"}]
schema:
  - name: probe
    physicalName: rt.probe.v1
    properties:
"""
PROBE = (
    HEAD
    + """\
      - {name: i, logicalType: integer, logicalTypeOptions: {minimum: 0}}
      - {name: s, logicalType: string, required: true}
"""
)


def h(r: OutRecord, name: str) -> bytes | None:
    return header(r.headers, "qstreams." + name)


@pytest.fixture(scope="module")
def probe() -> Contract:
    return parse_contract(PROBE)


def ndjson(n: int, bad: int = -1) -> bytes:
    """``n`` records, valid but record ``bad`` (``i`` below its minimum)."""
    return b"".join(orjson.dumps({"i": -1 if k == bad else k, "s": "x" * 40}) + b"\n" for k in range(n))


def arrow(n: int, bad: int = -1, *, file: bool = False) -> bytes:
    table = pl.DataFrame({"i": [-1 if k == bad else k for k in range(n)], "s": ["x" * 40] * n}).to_arrow()
    sink = io.BytesIO()
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


@pytest.mark.parametrize(
    "value",
    [ndjson(41, bad=40), arrow(41, bad=40), arrow(41, bad=40, file=True)],
    ids=["ndjson", "arrow", "arrow file"],
)
def test_a_re_encoded_validated_copy_too_large_becomes_a_reference_naming_its_source(
    probe: Contract, value: bytes
) -> None:
    settings = Settings(mode=Mode.GATE)
    ctype = (("content-type", NDJSON.encode() if value.startswith(b"{") else b"application/vnd.apache.arrow.stream"),)
    # two alike messages: each reference must name its own offset
    messages = [Message(TOPIC, 3, 17, value, b"k", ctype, 5), Message(TOPIC, 3, 18, value, b"k", ctype, 5)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    assert len(result.validated) == 2 and all(r.value is not value for r in result.validated)  # 40 of 41 re-encoded
    limits = {r.topic: 100_000 for r in result.outputs()} | {settings.output_topic(TOPIC, "validated"): 500}
    out = fit(result, messages, limits, settings=settings)
    assert out.validated == []
    refs = [orjson.loads(r.value or b"") for r in out.dead_lettered]
    assert [(r["partition"], r["offset"]) for r in refs] == [(3, 17), (3, 18)]
    assert [(h(r, "errors.partition"), h(r, "errors.offset")) for r in out.dead_lettered] == [(b"3", b"17"),
                                                                                             (b"3", b"18")]  # fmt: skip
    assert all(h(r, "records") == b"40" for r in out.dead_lettered)


def test_the_record_index_of_a_large_multi_record_message_is_whole(probe: Contract) -> None:
    value = ndjson(1000).replace(b'{"i":999,', b'{"i":-1,')  # one invalid record, the last
    messages = [Message(TOPIC, 0, 0, value, None, (("content-type", NDJSON.encode()),), 0)]
    result = Binding(probe, probe.schema(), Settings(mode=Mode.GATE)).process(messages, worker_id="w")
    (valid,) = result.validated
    (bad,) = result.quarantined
    assert h(valid, "records") == b"999"
    assert h(valid, "records.index") == b"0-998"  # runs as first-last: the whole index in a few bytes
    assert h(bad, "records.index") == b"999"
    gaps = ndjson(1000).replace(b'{"i":500,', b'{"i":-1,').replace(b'{"i":7,', b'{"i":-1,')
    (valid,) = (
        Binding(probe, probe.schema(), Settings(mode=Mode.GATE))
        .process([Message(TOPIC, 0, 0, gaps, None, (("content-type", NDJSON.encode()),), 0)], worker_id="w")
        .validated
    )
    assert h(valid, "records.index") == b"0-6,8-499,501-999"
    assert parse_positions(h(valid, "records.index") or b"") == [k for k in range(1000) if k not in (7, 500)]


def test_a_message_of_many_undecodable_lines_is_one_dead_letter_per_reason(probe: Contract) -> None:
    # 1 MB of bad lines used to become 500,000 DLQ records (313 MB of copies and headers, 870 MB of memory)
    n = 20_000
    value = b"x\n" * n + b'{"i":1,"s":"ok"}\n' + b"[1]\n" * 3 + b"\xff\n"
    messages = [Message(TOPIC, 2, 9, value, b"k", (("content-type", NDJSON.encode()),), 0)]
    result = Binding(probe, probe.schema(), Settings(mode=Mode.GATE)).process(messages, worker_id="w")
    assert result.counts == {"valid": 1, "quarantined": 0, "dead_lettered": n + 4}  # records, as ever
    garbage, arrays, binary = result.dead_lettered
    assert [h(d, "errors.class") for d in result.dead_lettered] == [b"decode.NOT_JSON", b"decode.NOT_OBJECT",
                                                                    b"decode.NOT_UTF8"]  # fmt: skip
    assert garbage.value == b"x\n" * n and (h(garbage, "records"), h(garbage, "records.index")) == (
        str(n).encode(), f"0-{n - 1}".encode())  # fmt: skip
    assert (h(garbage, "errors.message") or b"").startswith(f"{n} lines of this NDJSON message could not be".encode())
    assert arrays.value == b"[1]\n" * 3 and h(arrays, "records.index") == f"{n + 1}-{n + 3}".encode()
    assert binary.value == b"\xff\n" and h(binary, "records.index") == str(n + 4).encode()
    assert (h(binary, "errors.message") or b"").startswith(f"Line {n + 4} of the NDJSON message".encode())
    assert all(len(v or b"") <= MAX_VALUE_BYTES for d in result.dead_lettered for _, v in d.headers)


def test_a_reference_to_a_copy_with_a_long_record_index_fits(probe: Contract) -> None:
    value = b"".join(b"x\n" if k % 2 else b"[1]\n" for k in range(4000))  # two interleaved reasons: no runs
    settings = Settings(mode=Mode.GATE)
    messages = [Message(TOPIC, 0, 3, value, None, (("content-type", NDJSON.encode()),), 0)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    assert max(len(h(d, "records.index") or b"") for d in result.dead_lettered) > 4 * MAX_VALUE_BYTES
    limits = {r.topic: 3000 for r in result.outputs()}
    out = fit(result, messages, limits, settings=settings)
    assert len(out.dead_lettered) == 2
    assert all(orjson.loads(d.value or b"")["reference"] and orjson.loads(d.value or b"")["offset"] == 3
               for d in out.dead_lettered)  # fmt: skip
    assert all(record_size(d) < 3000 and (h(d, "records.index") or b"").endswith("…".encode())
               for d in out.dead_lettered)  # fmt: skip


def test_a_record_failing_thousands_of_rules_is_quarantined_with_whole_rule_names() -> None:
    n = 200
    contract = parse_contract(HEAD + "".join(f"      - {{name: field_{k:04d}, logicalType: string, required: true}}\n"
                                             for k in range(n)))  # fmt: skip
    messages = [Message(contract.schema().topic, 0, 0, b'{"other":1}', None, (), 0)]
    result = Binding(contract, contract.schema(), Settings(mode=Mode.GATE)).process(messages, worker_id="w")
    (q,) = result.quarantined
    assert q.value == b'{"other":1}'
    rules = h(q, "errors.rules") or b""
    assert len(rules) <= MAX_VALUE_BYTES
    *names, rest = rules.decode().split(",")
    assert names == [f"field_{k:04d}:required" for k in range(len(names))]
    assert rest == f"…(+{n - len(names)} more)"
    assert (h(q, "errors.class"), h(q, "errors.stage")) == (b"contract.violation", b"validate")


def test_a_replayed_record_carrying_old_position_headers_is_referenced_at_its_new_position(probe: Contract) -> None:
    # a record replayed from a quarantine topic into the source keeps the headers it had there
    old = (("content-type", NDJSON.encode()), ("qstreams.errors.partition", b"9"), ("qstreams.errors.offset", b"999"),
           ("qstreams.records.index", b"0,1,2"))  # fmt: skip
    settings = Settings(mode=Mode.GATE)
    messages = [Message(TOPIC, 1, 5, ndjson(40), b"k", old, 7)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    limits = {r.topic: 100_000 for r in result.outputs()} | {settings.output_topic(TOPIC, "validated"): 500}
    (ref,) = fit(result, messages, limits, settings=settings).dead_lettered
    assert (orjson.loads(ref.value or b"")["partition"], orjson.loads(ref.value or b"")["offset"]) == (1, 5)
    assert header(ref.headers, "qstreams.errors.offset") == b"5"


def test_validated_copies_sharing_one_value_object_are_referenced_each_at_its_own_offset(probe: Contract) -> None:
    settings = Settings(mode=Mode.GATE)
    value = orjson.dumps({"i": 1, "s": "x" * 600})  # one bytes object consumed twice (as an interning client may)
    messages = [Message(TOPIC, 0, 10, value, None, (), 1), Message(TOPIC, 0, 11, value, None, (), 2)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    limits = {r.topic: 100_000 for r in result.outputs()} | {settings.output_topic(TOPIC, "validated"): 300}
    refs = fit(result, messages, limits, settings=settings).dead_lettered
    assert [orjson.loads(r.value or b"")["offset"] for r in refs] == [10, 11]


def test_a_null_header_value_is_sized_and_fitted(probe: Contract) -> None:
    # Kafka allows a header without a value; aiokafka reads it as None
    settings = Settings(mode=Mode.GATE)
    messages = [Message(TOPIC, 0, 0, b'{"i":1,"s":"x"}', None, (("trace", None),), 0)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    assert record_size(result.validated[0]) > len(b'{"i":1,"s":"x"}')
    limits = {r.topic: 100_000 for r in result.outputs()}
    out = fit(result, messages, limits, settings=settings)
    assert out.validated == result.validated and out.validated[0].headers[0] == ("trace", None)
    small = {r.topic: 200 for r in result.outputs()}  # too small: every record sized one by one
    assert len(fit(result, messages, small, settings=settings).dead_lettered) == 1


def test_the_worker_forwards_and_commits_records_with_a_null_header_value() -> None:
    from streams.testing.transport import InMemoryTransport
    from tests.unit.kafka.test_worker_faults import record
    from tests.unit.kafka.test_worker_inmemory import TOPIC as FEATURES
    from tests.unit.kafka.test_worker_inmemory import TP0, run, running, worker_for

    transport = InMemoryTransport(sources=[FEATURES], partitions={FEATURES: 1})
    worker = worker_for(transport)

    async def scenario() -> None:
        transport.produce(FEATURES, record(1), key=b"k1", headers=(("trace", None),))
        transport.produce(FEATURES, record(2, channel="web"), key=b"k2", headers=(("trace", None),))
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 2, timeout=20)
        (valid,) = transport.records(f"{FEATURES}.validated")
        (bad,) = transport.records(f"{FEATURES}.quarantine")
        assert valid.headers[0] == bad.headers[0] == ("trace", None)

    run(scenario)


@pytest.mark.parametrize(
    ("extra", "built_over"),
    [({"K" * 1_200_000: 1}, 0), ({f"unknown_field_{n:06d}": n for n in range(60_000)}, 1_048_588)],
    ids=["a huge unknown field name", "sixty thousand unknown fields"],
)
def test_a_drift_event_of_a_record_with_hostile_keys_is_cut_not_dropped(
    probe: Contract, extra: dict[str, int], built_over: int
) -> None:
    """The event builder cuts a name over 256 characters itself (the huge name's event is small when built); sixty
    thousand names still make an event over the topic's limit, which fitting cuts."""
    settings = Settings(mode=Mode.GATE, batch_events=True, max_message_bytes=4_000_000)
    messages = [Message(TOPIC, 0, 0, orjson.dumps({"i": 1, "s": "x", **extra}), None, (), 0)]
    result = Binding(probe, probe.schema(), settings).process(messages, worker_id="w")
    drift = [e for e in result.events if b'"unknown_fields"' in (e.value or b"")]
    assert len(drift) == 1 and len(drift[0].value or b"") > built_over
    limit = 1_048_588
    out = fit(result, messages, {r.topic: limit for r in result.outputs()}, settings=settings)
    (cut,) = [e for e in out.events if b'"unknown_fields"' in (e.value or b"")]
    assert record_size(cut) <= limit
    unknown = orjson.loads(cut.value or b"")["unknown_fields"]
    assert unknown and all(len(k) < 2000 for k in unknown)
    if len(extra) > 1:  # the names that fit, then how many were left out
        assert list(unknown)[-1].endswith("more entries truncated]") and sum(unknown.values()) > len(unknown)


@pytest.mark.parametrize(
    ("value", "ctype"),
    [
        (b'{"i":1,"s":"a"}\r\n\r\n{"i":2,"s":"b"}', NDJSON.encode()),  # CRLF, a blank line, no final line break
        (b'\xef\xbb\xbf{"i":1,"s":"a"}\n{"i":2,"s":"b"}\n', None),  # detected by content, with a byte order mark
        (arrow(3), None),
        (arrow(3, file=True), None),
    ],
    ids=["ndjson crlf", "ndjson bom", "arrow stream", "arrow file"],
)
def test_a_multi_record_message_whose_records_are_all_valid_is_forwarded_byte_for_byte(
    probe: Contract, value: bytes, ctype: bytes | None
) -> None:
    m = Message(TOPIC, 0, 0, value, b"k", (("content-type", ctype),) if ctype else (), 1)
    result = Binding(probe, probe.schema(), Settings(mode=Mode.GATE)).process([m], worker_id="w")
    (valid,) = result.validated
    assert valid.value is value  # the consumed bytes themselves, as for a JSON record
    assert valid.headers[: len(m.headers)] == m.headers and h(valid, "records") is not None


def test_the_valid_records_of_an_arrow_file_are_forwarded_as_an_arrow_file(probe: Contract) -> None:
    m = Message(TOPIC, 0, 0, arrow(5, bad=2, file=True), None, (), 1)
    result = Binding(probe, probe.schema(), Settings(mode=Mode.GATE)).process([m], worker_id="w")
    (valid,), (bad,) = result.validated, result.quarantined
    assert (valid.value or b"").startswith(b"ARROW1") and (bad.value or b"").startswith(b"ARROW1")
    rows = pa.ipc.open_file(pa.py_buffer(valid.value or b"")).read_all()
    assert rows.column("i").to_pylist() == [0, 1, 3, 4]
