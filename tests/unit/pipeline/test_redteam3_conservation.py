"""Red team 3: no record lost or duplicated on the record path, whatever the mix.

Generated polls of several partitions mix JSON records (valid, invalid, undecodable, byte order marks, content types
the worker does not decode) with NDJSON messages (valid, invalid and undecodable lines, blanks, CRLF) and Arrow
messages; each is routed with ``process`` and ``process_poll``, in gate and monitor mode. Every record must have
exactly one output in gate mode (NDJSON and Arrow: its position in one output's ``records.index``), the valid ones
none in monitor mode, the consumed headers first on every output, and both modes must judge alike.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict

import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract
from streams.pipeline.binding import Binding
from streams.pipeline.headers import header, parse_positions
from streams.pipeline.records import BatchResult, Message, OutRecord
from streams.settings import Mode, Settings

CONTRACT = parse_contract("""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:conservation
version: 1.0.0
status: draft
schema:
  - name: probe
    physicalName: probe.v1
    properties:
      - {name: i, logicalType: integer, logicalTypeOptions: {minimum: 0}}
      - {name: s, logicalType: string, required: true}
""")
TOPIC = "probe.v1"
P = "qstreams."
LINES = [b'{"i":1,"s":"a"}', b'{"i":-1,"s":"a"}', b'{"i":1}', b'{"i":"1","s":"a"}', b'{"i":3.0,"s":"\\u00e9"}',
         b'{"s":"a","s":"b"}', b"[1]", b"x", b'{"i":1,', b"\xff", b"\x0c", b'{"i":-9223372036854775809,"s":"a"}',
         b'{"i":1e2,"s":"a"}']  # fmt: skip
NDJSON = (("content-type", b"application/x-ndjson"),)


def arrow(rows: list[int]) -> bytes:
    table = pl.DataFrame({"i": rows, "s": ["a"] * len(rows)}).to_arrow()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


single = st.tuples(
    st.sampled_from(LINES).flatmap(lambda v: st.sampled_from([v, b"\xef\xbb\xbf" + v, b" " + v + b"\n"])),
    st.sampled_from([(), (("trace", b"t"),), (("content-type", b"application/avro"),), (("trace", None),)]),
)
multi = st.tuples(
    st.lists(st.sampled_from([*LINES, b"", b"  "]), min_size=1, max_size=6).flatmap(
        lambda ls: st.sampled_from([b"\n", b"\r\n"]).map(lambda nl: nl.join(ls) + nl)
    ),
    st.just(NDJSON),
)
table = st.tuples(st.lists(st.integers(-2, 2), min_size=1, max_size=4).map(arrow), st.just(()))


def outputs(results: list[BatchResult]) -> list[tuple[str, OutRecord]]:
    return [(k, r) for x in results for k, rs in (("v", x.validated), ("q", x.quarantined), ("d", x.dead_lettered))
            for r in rs]  # fmt: skip


def route(mode: Mode, msgs: list[Message], poll: bool) -> list[BatchResult]:
    binding = Binding(CONTRACT, CONTRACT.schema(), Settings(mode=mode))
    if binding.decoder._bulk is not None:
        binding.decoder._bulk.min_batch, binding.decoder._bulk.pause = 1, 0
    if not poll:
        return [binding.process(msgs, worker_id="w")]
    parts = sorted({m.partition for m in msgs})
    return binding.process_poll([[m for m in msgs if m.partition == p] for p in parts], worker_id="w")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    specs=st.lists(st.tuples(st.one_of(single, single, multi, table), st.integers(0, 2)), min_size=1, max_size=25),
    poll=st.booleans(),
)
def test_every_record_has_exactly_one_output_and_both_modes_judge_alike(
    specs: list[tuple[tuple[bytes, tuple[tuple[str, bytes | None], ...]], int]], poll: bool
) -> None:
    offsets: Counter[int] = Counter()
    msgs = []
    for (value, headers), p in specs:
        msgs.append(Message(TOPIC, p, offsets[p], value, f"k{p}-{offsets[p]}".encode(), headers, 1000 * p + offsets[p]))
        offsets[p] += 1
    gate, monitor = route(Mode.GATE, msgs, poll), route(Mode.MONITOR, msgs, poll)
    by_key = {m.key: m for m in msgs}
    seen: dict[bytes | None, list[int | None]] = defaultdict(list)
    for kind, r in outputs(gate):
        m = by_key[r.key]
        assert r.headers[: len(m.headers)] == m.headers and r.timestamp_ms == m.timestamp_ms
        if kind != "v":
            assert (header(r.headers, P + "errors.partition"), header(r.headers, P + "errors.offset")) == (
                str(m.partition).encode(), str(m.offset).encode())  # fmt: skip
            assert (
                header(r.headers, P + "errors.class") and (header(r.headers, P + "errors.message") or b"")[-1:] == b"."
            )
        index = header(r.headers, P + "records.index")
        if index is None:
            assert r.value is m.value
            seen[m.key].append(None)
        else:
            seen[m.key] += parse_positions(index)
            assert int(header(r.headers, P + "records") or b"0") == len(parse_positions(index))
    for m in msgs:
        got = seen[m.key]
        if None in got:
            assert got == [None], (m, got)
        elif m.value is not None and not m.value.startswith(b"\xff\xff\xff\xff"):  # NDJSON: every non-blank line once
            lines = [n for n, ln in enumerate(m.value.split(b"\n")) if ln.strip(b" \t\r\n")]
            assert sorted(got) == lines, (m, got)
        else:  # Arrow: every row once
            assert sorted(got) == list(range(pa.ipc.open_stream(m.value).read_all().num_rows)), (m, got)
    assert not any(x.validated for x in monitor)

    def judged(results: list[BatchResult]) -> list[object]:
        return [
            (x.counts, [(r.topic, r.value, r.key, tuple(h for h in r.headers if h[0] != P + "mode"))
                        for r in [*x.quarantined, *x.dead_lettered]])
            for x in results
        ]  # fmt: skip

    assert judged(gate) == judged(monitor)
    total = sum(sum(x.counts.values()) for x in gate)
    assert total == sum(len(v) for v in seen.values())
